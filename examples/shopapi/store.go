package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/http"

	"github.com/XSAM/otelsql"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
)

// openShop opens the shop's SQLite database in memory through otelsql, which records a client span per query with
// db.system.name, db.namespace and db.query.text, as a team instruments database/sql; it seeds orders with five
// items each.
func openShop(ctx context.Context) (*sql.DB, error) {
	db, err := otelsql.Open("sqlite", "file:shop?mode=memory&cache=shared",
		otelsql.WithAttributes(attribute.String("db.system.name", "sqlite"), attribute.String("db.namespace", "shop")),
		otelsql.WithSpanOptions(otelsql.SpanOptions{OmitRows: true, OmitConnResetSession: true, OmitConnPrepare: true, OmitConnectorConnect: true,
			// Queries inside a request only: the seeding at start would be a thousand traces of one span each.
			SpanFilter: func(ctx context.Context, _ otelsql.Method, _ string, _ []driver.NamedValue) bool {
				return trace.SpanContextFromContext(ctx).IsValid()
			}}))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1) // one in-memory database, shared
	for _, stmt := range []string{
		"CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER)",
		"CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price INTEGER)",
		"CREATE TABLE order_items (order_id INTEGER, item_id INTEGER)",
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("%s: %w", stmt, err)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	for order := 1; order <= 100; order++ {
		if _, err := tx.ExecContext(ctx, "INSERT INTO orders VALUES (?, ?)", order, order%10); err != nil {
			return nil, err
		}
		for i := range 5 {
			item := order*10 + i
			if _, err := tx.ExecContext(ctx, "INSERT INTO items VALUES (?, ?, ?)", item, fmt.Sprintf("item %d", item), 100+i); err != nil {
				return nil, err
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO order_items VALUES (?, ?)", order, item); err != nil {
				return nil, err
			}
		}
	}
	return db, tx.Commit()
}

// orderHandler answers GET /orders/{order_id} the way an ORM's lazy loading does: the order, its item ids, then
// one query per item (an N+1 loop: five runs of one statement), then the stock of the first item from the
// downstream service (DOWNSTREAM_URL, through an otelhttp client), when one is set.
func orderHandler(db *sql.DB, downstream string) http.HandlerFunc {
	client := &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport)}
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		var userID int
		if err := db.QueryRowContext(ctx, "SELECT user_id FROM orders WHERE id = ?", r.PathValue("order_id")).Scan(&userID); err != nil {
			http.Error(w, `{"detail": "order not found"}`, http.StatusNotFound)
			return
		}
		rows, err := db.QueryContext(ctx, "SELECT item_id FROM order_items WHERE order_id = ?", r.PathValue("order_id"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var ids []int
		for rows.Next() {
			var id int
			if err := rows.Scan(&id); err == nil {
				ids = append(ids, id)
			}
		}
		rows.Close()
		total := 0
		for _, id := range ids {
			var name string
			var price int
			if err := db.QueryRowContext(ctx, "SELECT name, price FROM items WHERE id = ?", id).Scan(&name, &price); err == nil {
				total += price
			}
		}
		if downstream != "" && len(ids) > 0 {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/items/%d", downstream, ids[0]), nil)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		fmt.Fprintf(w, `{"order_id": %q, "user_id": %d, "items": %d, "total": %d}`, r.PathValue("order_id"), userID, len(ids), total)
	}
}
