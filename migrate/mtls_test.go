package migrate_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/migrate"
)

// testCA issues certificates for a mutual-TLS test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "updraft test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(t *testing.T, serial int64, usage x509.ExtKeyUsage, ips ...net.IP) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "updraft test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: ips}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Regions may authenticate hosts with mutual TLS instead of HMAC: no key
// anywhere, and a host without a client certificate is refused.
func TestMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	h := migrate.NewHandler(migrate.HandlerOptions{Insecure: true}) // mutual TLS authenticates
	remote := &migrate.MapState{}
	h.Register("count", count(remote), remote)
	plain, err := listenLoopback("127.0.0.2")
	require.NoError(t, err)
	ip := plain.Addr().(*net.TCPAddr).IP
	ln := tls.NewListener(plain, &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, 2, x509.ExtKeyUsageServerAuth, ip)},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.pool, MinVersion: tls.VersionTLS13,
	})
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)} // the refused handshake is expected
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	url := "https://" + ln.Addr().String() + "/"

	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, Certificates: certs, MinVersion: tls.VersionTLS13}}}
	}
	withCert := newTarget(t, "mtls", url, migrate.CloudEventsOptions{Client: client(ca.issue(t, 3, x509.ExtKeyUsageClientAuth))})
	m, err := migrate.New([]migrate.Target{withCert}, migrate.Options{BufferDir: t.TempDir()})
	require.NoError(t, err, "a client certificate stands in for the HMAC key")

	home := &migrate.MapState{}
	ctx := ctxT(t)
	lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "count", Local: count(home), State: home}})
	require.NoError(t, err)
	out, err := lease.Invoke(ctx, "count", []byte("tls"))
	require.NoError(t, err)
	require.Equal(t, "1", string(out))
	require.NoError(t, lease.Return(ctx))
	require.Equal(t, int64(1), home.Get("tls"))

	noCert := newTarget(t, "anonymous", url, migrate.CloudEventsOptions{Client: client()})
	_, err = migrate.New([]migrate.Target{noCert}, migrate.Options{BufferDir: t.TempDir()})
	require.ErrorContains(t, err, "no TLS client certificate")
	_, err = noCert.Probe(ctx)
	require.ErrorIs(t, err, migrate.ErrUnreachable, "the region refuses a host without a certificate")
}
