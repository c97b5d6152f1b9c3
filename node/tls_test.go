package node_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/api"
)

// writeCert writes a fresh self-signed certificate for 127.0.0.1 (common
// name cn) to certFile and keyFile and returns it.
func writeCert(t *testing.T, certFile, keyFile, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// TestNodeTLS: with `tls` the public and API listeners speak HTTPS,
// HTTP/2 by ALPN, the URLs handed out are https://, plain HTTP gets 400,
// and a certificate renewed on disk is served to new connections without
// a restart.
func TestNodeTLS(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := writeCert(t, certFile, keyFile, "first")
	cfg := node.Config{
		Ingest:  testIngest,
		TURN:    testTURN,
		Listen:  "127.0.0.1:0",
		DataDir: filepath.Join(dir, "data"),
		API:     node.APIConfig{Listen: "127.0.0.1:0", Token: "tls-token"},
		TLS:     node.TLSConfig{CertFile: certFile, KeyFile: keyFile},
	}
	n, err := node.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	in := n.Info()
	if in.PublicURL != "https://"+in.PublicAddr || in.APIURL != "https://"+in.APIAddr {
		t.Fatalf("URLs with TLS: public %q api %q (addrs %s, %s)", in.PublicURL, in.APIURL, in.PublicAddr, in.APIAddr)
	}

	// client trusts exactly cert and reports the certificate it was served.
	client := func(cert *x509.Certificate) (*http.Client, *[]string) {
		pool := x509.NewCertPool()
		pool.AddCert(cert)
		var seen []string
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, VerifyConnection: func(cs tls.ConnectionState) error {
			seen = append(seen, cs.PeerCertificates[0].Subject.CommonName)
			return nil
		}}, ForceAttemptHTTP2: true}
		return &http.Client{Timeout: 10 * time.Second, Transport: tr}, &seen
	}
	c, seen := client(first)
	for _, base := range []string{in.PublicURL, in.APIURL} {
		res, err := c.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(body) != "ok\n" || res.Proto != "HTTP/2.0" {
			t.Fatalf("%s/healthz over TLS: %d %s %q", base, res.StatusCode, res.Proto, body)
		}
	}
	req, _ := http.NewRequest("POST", in.APIURL+"/streaming/streams", strings.NewReader(`{"name":"tls"}`))
	req.Header.Set("Authorization", "APIKey tls-token")
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var s api.Stream
	json.NewDecoder(res.Body).Decode(&s)
	res.Body.Close()
	if res.StatusCode != 201 || !strings.HasPrefix(s.PushURLWHIP, in.PublicURL+"/whip/") || !strings.HasPrefix(s.HLSCMAFURL, "https://") {
		t.Fatalf("create over TLS: %d %+v", res.StatusCode, s)
	}
	c.CloseIdleConnections()

	// Plain HTTP to the HTTPS port: 400, not a hang or a silent close.
	plain, err := http.Get("http://" + in.PublicAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	if plain.StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP to the HTTPS listener: %d, want 400", plain.StatusCode)
	}

	// Renewal: new files on disk (a later modification time), served to
	// new connections within a couple of seconds.
	time.Sleep(1100 * time.Millisecond)
	second := writeCert(t, certFile, keyFile, "second")
	later := time.Now().Add(2 * time.Second)
	os.Chtimes(certFile, later, later)
	os.Chtimes(keyFile, later, later)
	c2, seen2 := client(second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := c2.Get(in.PublicURL + "/healthz")
		if err == nil {
			res.Body.Close()
			break
		}
		c2.CloseIdleConnections()
		if time.Now().After(deadline) {
			t.Fatalf("renewed certificate not served: %v (served %v)", err, *seen2)
		}
		time.Sleep(200 * time.Millisecond)
	}
	c2.CloseIdleConnections()
	if (*seen)[0] != "first" || (*seen2)[len(*seen2)-1] != "second" {
		t.Errorf("certificates served: %v then %v", *seen, *seen2)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	err := node.Config{TLS: node.TLSConfig{CertFile: "/x.pem"}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "'tls.cert_file' and 'key_file' must be set together") {
		t.Errorf("cert without key: %v", err)
	}
	n, err := node.New(node.Config{Listen: "127.0.0.1:0", DataDir: dir, Ingest: testIngest, TURN: testTURN,
		TLS: node.TLSConfig{CertFile: filepath.Join(dir, "none.pem"), KeyFile: filepath.Join(dir, "none.key")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "'cert_file'") || !strings.Contains(err.Error(), "none.pem") {
		t.Errorf("missing certificate files: %v", err)
	}
}
