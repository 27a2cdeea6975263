package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// TestDashboardHistorySurvivesRestarts: the default config keeps the dashboard's history in
// checked_file_storage/dashboard, written at every flush (1 s here). A kill -9 a flush after the last requests
// loses none of them; a clean restart loses nothing either, in every window up to 7 days; a garbled history file
// starts the gateway healthy with an empty page and one log line, and the page fills again.
func TestDashboardHistorySurvivesRestarts(t *testing.T) {
	col := harness.StartCollector(t, []string{harness.ConfigPath("config.yaml")}, "DASHBOARD_SLICE=3s")
	send := func(n int) {
		reqs := make([]harness.Request, n)
		for i := range reqs {
			reqs[i] = harness.Request{Service: "shop-hist", Environment: "production", Method: "GET", Path: fmt.Sprintf("/items/%d", i),
				Route: "/items/{item_id}", Status: 200, Duration: time.Duration(5+i%20) * time.Millisecond}
		}
		td, _ := harness.Traces(reqs...)
		col.Send(t, td)
	}
	requests := func(window string) (int, error) {
		body, err := harness.Get("http://" + col.Dashboard + "/api/routes?window=" + window)
		if err != nil {
			return 0, err
		}
		var resp struct {
			Routes []struct {
				Service  string
				Requests int
			}
		}
		if err := json.Unmarshal([]byte(body), &resp); err != nil {
			return 0, err
		}
		n := 0
		for _, r := range resp.Routes {
			if r.Service == "shop-hist" {
				n += r.Requests
			}
		}
		return n, nil
	}
	waitFor := func(want int, windows ...string) {
		t.Helper()
		for _, w := range windows {
			harness.Eventually(t, 20*time.Second, fmt.Sprintf("%d requests in the %s window", want, w), func() (bool, string) {
				n, err := requests(w)
				return err == nil && n == want, fmt.Sprint(n, err)
			})
		}
	}

	send(50)
	waitFor(50, "1h")
	time.Sleep(2 * time.Second) // one more flush: the one that showed them also wrote them
	col.Kill()
	col.Start(t)
	waitFor(50, "5m", "1h", "1d", "7d")
	if !strings.Contains(col.Output(), "Dashboard history read back") {
		t.Errorf("no log line of the history read back:\n%s", col.Output())
	}

	send(30)
	waitFor(80, "1h")
	col.Stop() // a clean shutdown flushes and writes the last interval
	col.Start(t)
	waitFor(80, "1h", "1d", "7d")

	// Garble the history's file (the storage extension's file for this connector's client).
	col.Stop()
	files, _ := filepath.Glob(filepath.Join(col.DataDir, "dashboard", "*"))
	garbled := 0
	for _, f := range files {
		if info, err := os.Stat(f); err == nil && info.Mode().IsRegular() && !strings.Contains(filepath.Base(f), ".") {
			if err := os.WriteFile(f, []byte(strings.Repeat("not a bbolt file ", 100)), 0o600); err != nil {
				t.Fatal(err)
			}
			garbled++
		}
	}
	if garbled != 1 {
		t.Fatalf("want the one history file in %s/dashboard, found %v", col.DataDir, files)
	}
	col.Start(t)
	waitFor(0, "1h")
	damaged := 0
	for _, line := range strings.Split(col.Output(), "\n") {
		if strings.Contains(line, "damaged") || strings.Contains(line, "unreadable") {
			damaged++
		}
	}
	if damaged != 1 {
		t.Errorf("want one log line about the damaged history, got %d:\n%s", damaged, col.Output())
	}
	send(5)
	waitFor(5, "1h")
}
