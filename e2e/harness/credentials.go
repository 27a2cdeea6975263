package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Credentials are what the hardened configurations (staging, production, gateway) need from outside: a server
// certificate for 127.0.0.1 and localhost, self-signed so that it is its own CA, and a bearer token.
type Credentials struct {
	CertFile, KeyFile, Token string
	Roots                    *x509.CertPool
}

// NewCredentials writes a fresh key, certificate and random token into a test directory.
func NewCredentials(t testing.TB) *Credentials {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "otelcol-apm test gateway"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := &Credentials{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	writePEM(t, c.CertFile, "CERTIFICATE", der)
	writePEM(t, c.KeyFile, "EC PRIVATE KEY", keyDER)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	c.Roots = x509.NewCertPool()
	c.Roots.AddCert(cert)
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	c.Token = "tok-" + hex.EncodeToString(token)
	return c
}

func writePEM(t testing.TB, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// CollectorEnv is the environment that hands the credentials to a hardened configuration.
func (c *Credentials) CollectorEnv() []string {
	return []string{"OTLP_TLS_CERT_FILE=" + c.CertFile, "OTLP_TLS_KEY_FILE=" + c.KeyFile, "OTLP_BEARER_TOKEN=" + c.Token}
}

// ClientTLS trusts the test certificate only.
func (c *Credentials) ClientTLS() *tls.Config {
	return &tls.Config{RootCAs: c.Roots, MinVersion: tls.VersionTLS12}
}
