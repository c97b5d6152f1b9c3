package turn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Files of the self-signed certificate kept in the data directory.
const (
	SelfSignedCertFile = "turn-cert.pem"
	SelfSignedKeyFile  = "turn-key.pem"
)

// loadCertificate returns the configured certificate, else the self-signed
// one kept in dataDir (made on first start, remade when it does not cover
// host), else an in-memory one when dataDir is empty.
func loadCertificate(cfg Config, dataDir, host string) (tls.Certificate, bool, error) {
	if cfg.CertFile != "" {
		c, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return c, false, fmt.Errorf("turn: load 'cert_file'/'key_file': %w", err)
		}
		return c, false, nil
	}
	if dataDir == "" {
		certPEM, keyPEM, err := selfSigned(host)
		if err != nil {
			return tls.Certificate{}, false, err
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		return c, true, err
	}
	certPath, keyPath := filepath.Join(dataDir, SelfSignedCertFile), filepath.Join(dataDir, SelfSignedKeyFile)
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	switch {
	case err == nil && c.Leaf != nil && c.Leaf.VerifyHostname(host) == nil && time.Now().Before(c.Leaf.NotAfter):
		return c, false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return c, false, fmt.Errorf("turn: load self-signed certificate: %w", err)
	}
	certPEM, keyPEM, err := selfSigned(host)
	if err != nil {
		return tls.Certificate{}, false, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return tls.Certificate{}, false, fmt.Errorf("turn: data dir: %w", err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, false, fmt.Errorf("turn: write key: %w", err)
	}
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil { //nolint:gosec // a certificate is public
		return tls.Certificate{}, false, fmt.Errorf("turn: write certificate: %w", err)
	}
	c, err = tls.X509KeyPair(certPEM, keyPEM)
	return c, true, err
}

func selfSigned(host string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "edgenode TURN " + host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	} else if host != "" && host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}
