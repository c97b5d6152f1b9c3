package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// TLSConfig is the `tls` section: HTTPS on the node's HTTP listeners
// (public and API). With it the listeners speak HTTPS only, HTTP/2 is
// negotiated by ALPN (LL-HLS wants HTTP/2: HLS authoring spec App. B.1;
// WHIP wants HTTPS in production: RFC 9725 §5), and public_url defaults to
// https://<listen>. Without it they speak plain HTTP/1.1 and HTTP/2 with
// prior knowledge (h2c), for a proxy or CDN that terminates TLS.
type TLSConfig struct {
	// CertFile is the PEM certificate chain. Default "": no TLS. The
	// files are read again when they change on disk (a renewed
	// certificate needs no restart).
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `yaml:"key_file"`
}

// Enabled reports whether HTTPS is configured.
func (c TLSConfig) Enabled() bool { return c.CertFile != "" }

// Validate checks the `tls` section without reading the files (Start
// loads them and names the key when they do not load).
func (c TLSConfig) Validate() error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("'cert_file' and 'key_file' must be set together")
	}
	return nil
}

// certReloader serves the configured key pair, loading it again when
// either file's modification time changes (checked at most once a
// second). A pair that fails to load keeps the previous one in service.
type certReloader struct {
	cfg TLSConfig

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]time.Time
	checked time.Time
}

func newCertReloader(cfg TLSConfig) (*certReloader, error) {
	r := &certReloader{cfg: cfg}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) stamps() ([2]time.Time, error) {
	var out [2]time.Time
	for i, p := range []string{r.cfg.CertFile, r.cfg.KeyFile} {
		fi, err := os.Stat(p)
		if err != nil {
			return out, err
		}
		out[i] = fi.ModTime()
	}
	return out, nil
}

func (r *certReloader) load() error {
	st, err := r.stamps()
	if err != nil {
		return fmt.Errorf("tls: 'cert_file'/'key_file': %w", err)
	}
	c, err := tls.LoadX509KeyPair(r.cfg.CertFile, r.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("tls: 'cert_file'/'key_file': %w", err)
	}
	r.mu.Lock()
	r.cert, r.stamp, r.checked = &c, st, time.Now()
	r.mu.Unlock()
	return nil
}

// getCertificate is tls.Config.GetCertificate.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	cert, stamp, due := r.cert, r.stamp, time.Since(r.checked) >= time.Second
	if due {
		r.checked = time.Now()
	}
	r.mu.Unlock()
	if due {
		if st, err := r.stamps(); err == nil && st != stamp {
			if r.load() == nil {
				r.mu.Lock()
				cert = r.cert
				r.mu.Unlock()
			}
		}
	}
	return cert, nil
}

// serverTLS is the tls.Config of the HTTP listeners: HTTP/2 first, then
// HTTP/1.1.
func (r *certReloader) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: r.getCertificate,
	}
}
