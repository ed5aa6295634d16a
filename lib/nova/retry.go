package nova

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// retryTransport repeats a request that failed on the way (connection refused or
// reset, no answer) or that Keystone or Nova answered with a server error (500, 502,
// 503, 504), pausing RetryBase, then twice as long each time up to RetryMax, for at
// most RetryAttempts attempts and never past the request context's deadline.
//
// Only requests that may be repeated are retried: GET, HEAD, PUT and DELETE (Nova's
// service updates are idempotent) and Keystone's token request (a second token is
// harmless). A POST to Nova (a server action such as evacuate) is sent once: its
// outcome must be confirmed by reading Nova's state, never by sending it again.
type retryTransport struct {
	next     http.RoundTripper
	clock    Clock
	attempts int
	base     time.Duration
	max      time.Duration
	log      *slog.Logger
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	pause := t.base
	for attempt := 1; ; attempt++ {
		if attempt > 1 && req.Body != nil && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(ctx)
			req.Body = body
		}
		start := t.clock.Now()
		resp, err := t.next.RoundTrip(req)
		why := retryReason(resp, err)
		t.log.Debug("http", "method", req.Method, "url", redactURL(req.URL.String()), "status", statusOf(resp),
			"attempt", attempt, "elapsed", t.clock.Now().Sub(start).Round(time.Millisecond), "error", errString(err))
		if why == "" || !repeatable(req) || attempt >= t.attempts || ctx.Err() != nil || !t.timeFor(ctx, pause) {
			return resp, err
		}
		if resp != nil {
			// Free the connection for the next attempt.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
		}
		t.log.Debug("retrying", "method", req.Method, "url", redactURL(req.URL.String()), "reason", why, "pause", pause)
		if err := t.clock.Sleep(ctx, pause); err != nil {
			return nil, err
		}
		pause = min(2*pause, t.max)
	}
}

// timeFor reports whether a pause of d still leaves time for an attempt.
func (t *retryTransport) timeFor(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || t.clock.Now().Add(d).Before(dl)
}

// retryReason says why a failed attempt is worth repeating, or "" when it is not.
func retryReason(resp *http.Response, err error) string {
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return ""
		}
		return "connection error: " + err.Error()
	}
	switch resp.StatusCode {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return resp.Status
	}
	return ""
}

func repeatable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return req.Body == nil || req.GetBody != nil
	case http.MethodPost:
		return strings.HasSuffix(req.URL.Path, "/auth/tokens") && req.GetBody != nil
	}
	return false
}

func statusOf(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
