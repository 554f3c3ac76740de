package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/sekisho/sekisho/internal/cluster"
	"github.com/sekisho/sekisho/internal/digest"
	"github.com/sekisho/sekisho/internal/outbox"
	"github.com/sekisho/sekisho/internal/release"
	"github.com/sekisho/sekisho/internal/web"
)

// DigestEvery is how often the digest job looks whether digest_time has come.
const DigestEvery = time.Minute

// digestTokens are the signed links of the digest mails; the key is the same on every node.
func (s *Server) digestTokens() (digest.Tokens, error) {
	key, err := s.store.Secret(context.Background(), "digest", 32)
	if err != nil {
		return digest.Tokens{}, err
	}
	return digest.Tokens{Key: key}, nil
}

// registerDigestPage adds /d/{token}, the page of a held message linked from a digest. It is
// served even with digest = "off": the links of digests sent before stay good.
func (s *Server) registerDigestPage(mux *http.ServeMux, rel *release.Releaser, viewKey []byte, log *slog.Logger) error {
	tokens, err := s.digestTokens()
	if err != nil {
		return err
	}
	d := &web.Digest{
		Store: s.store, Releaser: rel, Tokens: tokens, Key: viewKey, Now: time.Now, Log: log,
		MinWait: time.Duration(s.cfg.Antispam.ConfirmMinSeconds) * time.Second,
	}
	d.Register(mux)
	return nil
}

// buildDigest sets up the daily digest (digest = "daily"): the job, and the outbox that
// sends it through the upstream servers when challenges have not made one.
func (s *Server) buildDigest() error {
	a := s.cfg.Antispam
	if a.Digest != "daily" {
		return nil
	}
	ledger, ok := s.store.(digest.Ledger)
	if !ok {
		return fmt.Errorf("antispam.digest: store %T keeps no digest ledger", s.store)
	}
	tokens, err := s.digestTokens()
	if err != nil {
		return err
	}
	if s.outbox == nil {
		if _, err := s.upstreamPool(); err != nil {
			return err
		}
		s.outbox = &outbox.Sender{Store: s.store, Upstream: liveUpstream{s}, Log: s.log.With("component", "outbox"),
			MaxAge: a.HoldFor.Duration, Metrics: s.metrics}
	}
	s.digest = &digest.Job{
		Store: s.store, Ledger: ledger, Tokens: tokens, From: a.ChallengeFrom, BaseURL: a.BaseURL,
		Hostname: s.cfg.Hostname, At: a.DigestTime, Log: s.log.With("component", "digest"),
	}
	return nil
}

// SendDigestNow queues a digest for every user with held mail at once, whatever
// digest_time says (the demo's button). Each call counts as a day of its own.
func (s *Server) SendDigestNow(ctx context.Context) (int, error) {
	if s.digest == nil {
		return 0, errors.New("antispam.digest is off")
	}
	return s.digest.Send(ctx, "now "+time.Now().UTC().Format(time.RFC3339Nano))
}

// startDigest runs the digest job once per cluster until ctx ends.
func (s *Server) startDigest(ctx context.Context, wg *sync.WaitGroup) {
	reg, ok := s.store.(cluster.Registry)
	if s.digest == nil || !ok {
		return
	}
	wg.Go(func() { cluster.RunOnce(ctx, reg, "digest", DigestEvery, s.digest.Tick, s.digest.Log) })
}
