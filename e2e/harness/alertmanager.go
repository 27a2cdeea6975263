package harness

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Alertmanager is a real Alertmanager (Debian's prometheus-alertmanager) that sends every alert to a webhook the
// test serves, grouped per alert (name, objective, severity, route) with a second of wait.
type Alertmanager struct {
	*Process
	Addr string

	mu       sync.Mutex
	received []WebhookAlert
}

// WebhookAlert is one alert as Alertmanager's webhook delivers it.
type WebhookAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// StartAlertmanager starts Alertmanager (ALERTMANAGER_BIN, or prometheus-alertmanager on the PATH: `make e2e`
// installs Debian's package when missing) with a webhook receiver on loopback.
func StartAlertmanager(t testing.TB) *Alertmanager {
	t.Helper()
	bin := os.Getenv("ALERTMANAGER_BIN")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("prometheus-alertmanager"); err != nil {
			t.Fatal("no prometheus-alertmanager on the PATH: run the suites through make (make e2e installs Debian's package)")
		}
	}
	am := &Alertmanager{Addr: Addr(t)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hook := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Alerts []WebhookAlert `json:"alerts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		am.mu.Lock()
		am.received = append(am.received, body.Alerts...)
		am.mu.Unlock()
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hook.Serve(ln) }()
	t.Cleanup(func() { _ = hook.Close() })

	dir := t.TempDir()
	config := fmt.Sprintf(`route:
  receiver: hook
  group_by: [alertname, slo, severity, service_name, http_route]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://%s/
        send_resolved: false
`, ln.Addr())
	configFile := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	am.Process = Start(t, "alertmanager", bin, []string{
		"--config.file=" + configFile, "--storage.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + am.Addr, "--cluster.listen-address=",
	})
	WaitHTTP(t, am.Process, "http://"+am.Addr+"/-/ready", 30*time.Second)
	return am
}

// Received returns the alerts the webhook got so far.
func (a *Alertmanager) Received() []WebhookAlert {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]WebhookAlert(nil), a.received...)
}
