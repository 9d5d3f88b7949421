// Package adapter serves the webhook adapter routes under /webhook/{name}: start a thread, follow up,
// poll, cancel and approve runs, with in-flight runs bounded across processes by DynamoDB slots.
package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/apigw"
	"github.com/hookgate/hookgate/shared/approval"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/limit"
	"github.com/hookgate/hookgate/shared/loop"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/trace"
)

// HeaderSecret carries the adapter secret when Authorization: Bearer is not used.
const HeaderSecret = "x-webhook-secret"

// Store is the part of the store the adapter uses.
type Store interface {
	GetRun(ctx context.Context, ws, id string) (store.Run, error)
	CreateRunWith(ctx context.Context, nr store.NewRun) (store.Run, bool, error)
	FreeSlots(ctx context.Context, pool string, size int) ([]int, error)
	ReleaseSlot(ctx context.Context, r store.Run) error
	CancelRun(ctx context.Context, ws, id, by string) (store.Run, error)
	DecideRun(ctx context.Context, ws, id string, d store.Decision) (store.Run, error)
	AbandonRun(ctx context.Context, ws, id, reason string) (store.Run, error)
	AppendEvents(ctx context.Context, evs []store.Event) ([]store.Event, error)
	KnownThreadShard(ws, thread string) (int, bool)
}

// Queue takes runs for the worker.
type Queue interface {
	SendInbound(ctx context.Context, m *queue.Inbound) error
}

// Directory finds an adapter by its name (the {name} of its routes), whichever workspace holds
// it: a NotFound error when there is none, any other error when it cannot be read.
type Directory interface {
	Get(ctx context.Context, name string) (*Adapter, error)
}

// Config is the adapters' configuration.
type Config struct {
	Adapters      Directory
	Lease         time.Duration  // how long a slot is held before it frees itself (the worker renews it)
	MaxSyncWait   time.Duration  // sync requests wait at most this (below API Gateway's 30 s)
	AllowHTTPURLs bool           // replyUrl may be http:// (local mode)
	Approvals     *approval.Keys // checks decision tokens
	// IDs derives the ids of a run started with an eventId under the stack's id key.
	IDs ids.Keyed
}

// Handler handles the adapter routes.
type Handler struct {
	cfg     Config
	store   Store
	queue   Queue
	gate    *limit.Gate // nil admits everything
	metrics *metrics.Emitter
	log     *slog.Logger
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error
	routes  map[string]route
	// decisions are the approve (true) and deny (false) routes: they authenticate the approver
	// by a decision token, not the adapter's secret.
	decisions map[string]bool
}

// WithGate makes every new run pass g: the workspace's inbound rate and daily run budget.
func (h *Handler) WithGate(g *limit.Gate) *Handler {
	h.gate = g
	return h
}

type route func(ctx context.Context, a *Adapter, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// New returns a Handler.
func New(cfg Config, st Store, q Queue, log *slog.Logger, now func() time.Time) *Handler {
	h := &Handler{cfg: cfg, store: st, queue: q, log: log, now: now, sleep: sleepCtx}
	const run = "/webhook/{name}/threads/{threadId}/runs/{runId}"
	h.routes = map[string]route{
		"POST /webhook/{name}":                             h.post,
		"POST /webhook/{name}/messages":                    h.post,
		"POST /webhook/{name}/threads/{threadId}/messages": h.post,
		"GET " + run:              h.status,
		"POST " + run + "/cancel": h.cancel,
	}
	h.decisions = map[string]bool{"POST " + run + "/approve": true, "POST " + run + "/deny": false}
	return h
}

// RouteKeys returns the route keys the handler serves (for a test against template.yaml).
func (h *Handler) RouteKeys() []string {
	keys := make([]string, 0, len(h.routes)+len(h.decisions))
	for k := range h.routes {
		keys = append(keys, k)
	}
	for k := range h.decisions {
		keys = append(keys, k)
	}
	return keys
}

// Handle is the Lambda handler: authenticate the adapter, then dispatch on the route key.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ctx = trace.NewContext(ctx, trace.From(apigw.Header(&req, trace.Header))) // goes with the queued message
	if err := loop.Refuse(req.Headers); err != nil {                          // the gateway's own request, come back
		return apigw.Error(ctx, h.log, err), nil
	}
	if approve, ok := h.decisions[req.RouteKey]; ok {
		resp, err := h.decide(ctx, &req, approve)
		if err != nil {
			return apigw.Error(ctx, h.log.With("adapter", req.PathParameters["name"]), err), nil
		}
		return resp, nil
	}
	// The message routes are the adapter's door: counted like the inbound doors' (Door=adapter).
	inbound := req.RouteKey == "POST /webhook/{name}" || strings.HasPrefix(req.RouteKey, "POST ") && strings.HasSuffix(req.RouteKey, "/messages")
	if inbound {
		defer h.metrics.Flush()
	}
	a, err := h.authenticate(ctx, &req)
	if err != nil {
		h.countRefused(inbound, err)
		return apigw.Error(ctx, h.log, err), nil
	}
	r, ok := h.routes[req.RouteKey]
	if !ok {
		return apigw.Error(ctx, h.log, apierr.New(apierr.NotFound, "no such route")), nil
	}
	resp, err := r(ctx, a, &req)
	if err != nil {
		h.countRefused(inbound, err)
		return apigw.Error(ctx, h.log.With("adapter", a.Name), err), nil
	}
	if inbound {
		h.metrics.Count(metrics.InboundAccepted, 1, "Door", DoorAdapter)
	}
	return resp, nil
}

// DoorAdapter is the adapter's Door in the inbound metrics.
const DoorAdapter = "adapter"

func (h *Handler) countRefused(inbound bool, err error) {
	if inbound {
		h.metrics.Count(metrics.InboundRefused, 1, "Door", DoorAdapter, "Reason", string(apierr.CodeOf(err)))
	}
}

// WithMetrics makes the adapter count the messages its routes accept and refuse, flushed after
// each request.
func (h *Handler) WithMetrics(m *metrics.Emitter) *Handler {
	h.metrics = m
	return h
}

// authenticate finds the adapter and checks its secret. An unknown adapter and a wrong secret
// both get 401, so the response does not tell which adapter names exist.
func (h *Handler) authenticate(ctx context.Context, req *events.APIGatewayV2HTTPRequest) (*Adapter, error) {
	presented := apigw.Header(req, HeaderSecret)
	if auth := apigw.Header(req, "authorization"); presented == "" && len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		presented = strings.TrimSpace(auth[7:])
	}
	a, known, err := h.adapter(ctx, req.PathParameters["name"])
	if err != nil {
		return nil, err
	}
	if ok := known && a.Authentic(presented); !ok {
		return nil, apierr.New(apierr.Unauthorized, "missing or invalid adapter secret")
	}
	return a, nil
}

// adapter finds the adapter of a route; known is false for a name no adapter has.
func (h *Handler) adapter(ctx context.Context, name string) (*Adapter, bool, error) {
	if !namePattern.MatchString(name) {
		return nil, false, nil
	}
	a, err := h.cfg.Adapters.Get(ctx, name)
	switch {
	case apierr.CodeOf(err) == apierr.NotFound:
		return nil, false, nil
	case err != nil:
		return nil, false, apierr.Wrap(apierr.Unavailable, err, "the adapter could not be read; retry later")
	}
	return a, true, nil
}

// RunView is a run as the adapter routes show it.
type RunView struct {
	RunID       string        `json:"runId"`
	ThreadID    string        `json:"threadId"`
	Status      string        `json:"status"`
	Result      *store.Result `json:"result,omitempty"`
	Error       string        `json:"error,omitempty"`
	User        string        `json:"user,omitempty"`
	Approval    *ApprovalView `json:"approval,omitempty"`
	CancelledBy string        `json:"cancelledBy,omitempty"`
	Attempts    int           `json:"attempts"`
	CreatedAt   time.Time     `json:"createdAt"`
	UpdatedAt   time.Time     `json:"updatedAt"`
	StartedAt   *time.Time    `json:"startedAt,omitempty"`
	CompletedAt *time.Time    `json:"completedAt,omitempty"`
}

// ApprovalView is what a run's agent asked a human to decide, and the decision once made.
// The decision tokens are not part of it: they go to the approvers, in the workspace's
// run.requires_approval event.
type ApprovalView struct {
	ID          string     `json:"id,omitempty"`
	Prompt      string     `json:"prompt"`
	Options     []string   `json:"options,omitempty"`
	Approvers   []string   `json:"approvers,omitempty"`
	ExpiresAt   *time.Time `json:"expiresAt,omitempty"`
	RequestedAt time.Time  `json:"requestedAt"`
	Decision    string     `json:"decision,omitempty"` // approved or denied
	Option      string     `json:"option,omitempty"`
	DecidedBy   string     `json:"decidedBy,omitempty"`
	Comment     string     `json:"comment,omitempty"`
	DecidedAt   *time.Time `json:"decidedAt,omitempty"`
}

// View is the adapter's view of a run.
func View(r store.Run) RunView {
	v := RunView{
		RunID: r.ID, ThreadID: r.ThreadID, Status: r.Status, Result: r.Result, Error: r.Error, User: r.User,
		CancelledBy: r.CancelledBy, Attempts: r.Attempts, CreatedAt: r.CreatedAt,
		UpdatedAt: r.UpdatedAt, StartedAt: r.StartedAt, CompletedAt: r.CompletedAt,
	}
	if a := r.Approval; a != nil {
		v.Approval = &ApprovalView{ID: a.ID, Prompt: a.Prompt, Options: a.Options, Approvers: a.Approvers, RequestedAt: a.RequestedAt, Decision: a.Decision,
			Option: a.Option, DecidedBy: a.DecidedBy, Comment: a.Comment, DecidedAt: a.DecidedAt}
		if !a.ExpiresAt.IsZero() {
			v.Approval.ExpiresAt = &a.ExpiresAt
		}
	}
	return v
}

// Accepted is the 202 body of a new run.
type Accepted struct {
	ThreadID string `json:"threadId"`
	RunID    string `json:"runId"`
	Status   string `json:"status"`
}

func (h *Handler) post(ctx context.Context, a *Adapter, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	body, err := apigw.Body(req, a.MaxBodyBytes)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	m, err := parseMessage(body, a, h.cfg.AllowHTTPURLs)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if p := req.PathParameters["threadId"]; p != "" {
		if m.ThreadID != "" && m.ThreadID != p {
			return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Invalid, "threadId in the body differs from the path")
		}
		m.ThreadID = p
	}
	run, err := h.start(ctx, a, m)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if m.Sync {
		wait := min(time.Duration(m.TimeoutMS)*time.Millisecond, h.cfg.MaxSyncWait)
		if m.TimeoutMS == 0 {
			wait = h.cfg.MaxSyncWait
		}
		if run = h.wait(ctx, run, wait); run.Status != store.RunQueued && run.Status != store.RunRunning {
			return apigw.JSON(http.StatusOK, View(run)), nil
		}
	}
	return apigw.JSON(http.StatusAccepted, Accepted{ThreadID: run.ThreadID, RunID: run.ID, Status: run.Status}), nil
}

// maxStartTries bounds the search for a free slot while other requests take them.
const maxStartTries = 25

// start creates the run with its message (and its thread, unless it follows one up) while taking
// one of the adapter's in-flight slots, then queues it. A repeated eventId returns the first run.
// A new run is admitted by the gate first; the budget unit is given back unless the run is stored
// and queued (or stored to be queued by the sender's retry).
func (h *Handler) start(ctx context.Context, a *Adapter, m message) (store.Run, error) {
	now := h.now().UTC()
	ws := a.Workspace
	followUp := m.ThreadID != ""
	nr := store.NewRun{
		Thread:   store.Thread{ID: m.ThreadID, WorkspaceID: ws, Channel: Channel(a.Name)},
		Message:  store.Message{Direction: "in", Source: "adapter", Text: m.Text, User: m.User, Data: m.Data, CreatedAt: now},
		Run:      store.Run{Adapter: a.Name, User: m.User, Agent: a.Agent, ReplyURL: m.ReplyURL, Approvers: a.Approvers},
		FollowUp: followUp,
	}
	if followUp && !ids.Valid("thr", m.ThreadID) {
		return store.Run{}, apierr.New(apierr.NotFound, "thread not found")
	}
	if m.EventID != "" {
		nr.Run.ID = h.cfg.IDs.Derive("run", ws, "adapter", a.Name, m.EventID)
		nr.Message.ID = h.cfg.IDs.Derive("msg", ws, "adapter", a.Name, m.EventID)
		if !followUp {
			nr.Thread.ID = h.cfg.IDs.Derive("thr", ws, "adapter", a.Name, m.EventID)
		}
		// A repeat returns the first run without taking a slot, even when all are taken.
		if run, err := h.store.GetRun(ctx, ws, nr.Run.ID); err == nil {
			return h.repeat(ctx, a, run, nr)
		} else if apierr.CodeOf(err) != apierr.NotFound {
			return store.Run{}, apierr.Wrap(apierr.Unavailable, err, "the run could not be stored; retry later")
		}
	} else {
		nr.Run.ID, nr.Message.ID = ids.New("run", now), ids.New("msg", now)
		if !followUp {
			nr.Thread.ID = ids.New("thr", now)
		}
	}
	nr.Thread.ExternalID = nr.Thread.ID

	adm, err := h.gate.Admit(ctx, ws, true)
	if err != nil {
		return store.Run{}, err
	}
	kept := false
	defer func() {
		if !kept {
			adm.Refund(ctx, h.log)
		}
	}()

	pool := store.SlotPool(ws, a.Name)
	for try := 0; ; try++ {
		free, err := h.store.FreeSlots(ctx, pool, a.MaxInFlight)
		if err != nil {
			return store.Run{}, apierr.Wrap(apierr.Unavailable, err, "the run could not be stored; retry later")
		}
		if len(free) == 0 || try == maxStartTries {
			return store.Run{}, apierr.New(apierr.RateLimited, "too many in-flight webhook runs")
		}
		nr.Slot = &store.Slot{Pool: pool, Index: free[rand.IntN(len(free))], Lease: h.cfg.Lease}
		run, created, err := h.store.CreateRunWith(ctx, nr)
		switch {
		case errors.Is(err, store.ErrSlotTaken), errors.Is(err, store.ErrContended):
			if err := h.sleep(ctx, time.Duration(1+rand.IntN(4+4*try))*time.Millisecond); err != nil {
				return store.Run{}, apierr.Wrap(apierr.Unavailable, err, "the run could not be stored; retry later")
			}
			continue
		case apierr.CodeOf(err) == apierr.NotFound:
			return store.Run{}, err
		case err != nil:
			return store.Run{}, apierr.Wrap(apierr.Unavailable, err, "the run could not be stored; retry later")
		case !created:
			return h.repeat(ctx, a, run, nr) // a concurrent repeat of the same eventId won
		}
		kept = m.EventID != "" // stored: the sender's retry queues it, admitted now
		if err := h.enqueue(ctx, a, run, nr); err != nil {
			h.unqueued(ctx, run, m.EventID != "" && !errors.Is(err, queue.ErrRefused))
			return store.Run{}, queue.SendFailure(err)
		}
		kept = true
		h.log.InfoContext(ctx, "adapter run queued", "adapter", a.Name, "run_id", run.ID, "thread_id", run.ThreadID, "slot", nr.Slot.Index)
		return run, nil
	}
}

// repeat answers a repeated eventId with the first run. A run still queued is queued again, in
// case the first request stored it but could not queue it (SQS drops a duplicate within 5 minutes
// and the worker's writes are idempotent).
func (h *Handler) repeat(ctx context.Context, a *Adapter, run store.Run, nr store.NewRun) (store.Run, error) {
	if run.Adapter != a.Name || (nr.FollowUp && run.ThreadID != nr.Thread.ID) {
		return store.Run{}, apierr.New(apierr.Conflict, "eventId was already used for another thread")
	}
	if run.Status == store.RunQueued {
		nr.Thread.ID, nr.Message.ID = run.ThreadID, run.MessageID
		if err := h.enqueue(ctx, a, run, nr); err != nil {
			// Refused for good, the first send was refused too: the run was never queued. After
			// a transient failure it may have been, so it keeps what it holds.
			if errors.Is(err, queue.ErrRefused) {
				h.unqueued(ctx, run, false)
			}
			return store.Run{}, queue.SendFailure(err)
		}
	}
	return run, nil
}

// unqueued frees the in-flight slot of a run whose message could not be queued: no slot is held
// by a run that was never queued. A run the sender can retry (an eventId, a transient failure)
// stays queued, so the retry queues it again; any other (no eventId, or a message the queue
// refuses for good) is ended now.
func (h *Handler) unqueued(ctx context.Context, run store.Run, retriable bool) {
	if !retriable {
		if _, err := h.store.AbandonRun(ctx, run.WorkspaceID, run.ID, "the run could not be queued"); err != nil {
			h.log.WarnContext(ctx, "unqueued run not ended", "run_id", run.ID, "err", err)
		}
	}
	if err := h.store.ReleaseSlot(ctx, run); err != nil {
		h.log.WarnContext(ctx, "slot of an unqueued run not released; its lease frees it", "run_id", run.ID, "err", err)
	}
}

func (h *Handler) enqueue(ctx context.Context, a *Adapter, run store.Run, nr store.NewRun) error {
	m := &queue.Inbound{
		Version: queue.InboundVersion, WorkspaceID: a.Workspace, ThreadID: run.ThreadID, MessageID: nr.Message.ID,
		RunID: run.ID, Source: "adapter", Channel: Channel(a.Name), ExternalID: run.ThreadID, Text: nr.Message.Text,
		User: nr.Message.User, Data: nr.Message.Data, ReceivedAt: nr.Message.CreatedAt, Agent: a.Agent, Stored: true,
	}
	if sh, ok := h.store.KnownThreadShard(a.Workspace, run.ThreadID); ok {
		m.LogShard = &sh // the worker appends the thread's events without reading the thread
	}
	return h.queue.SendInbound(ctx, m)
}

// Channel is the channel of an adapter's threads.
func Channel(adapter string) string { return "adapter." + adapter }

// wait polls the run until it leaves queued and running, or until wait has passed, and returns
// what it last read.
func (h *Handler) wait(ctx context.Context, run store.Run, wait time.Duration) store.Run {
	deadline := h.now().Add(wait)
	pause := 50 * time.Millisecond
	for {
		if run.Status != store.RunQueued && run.Status != store.RunRunning {
			return run
		}
		left := deadline.Sub(h.now())
		if left <= 0 {
			return run
		}
		if err := h.sleep(ctx, min(pause, left)); err != nil {
			return run // the caller gave up: answer with what is known
		}
		pause = min(pause*3/2, 500*time.Millisecond)
		cur, err := h.store.GetRun(ctx, run.WorkspaceID, run.ID)
		if err != nil {
			// The run is stored and queued: answer with its ids (202), never an error a sender
			// would retry into a second run.
			h.log.WarnContext(ctx, "sync wait stopped: the run could not be read", "run_id", run.ID, "err", err)
			return run
		}
		run = cur
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// run reads the run of the route and checks that it is on the route's thread and the adapter's:
// an adapter reads the runs it started, and acts on them (own). Runs that no adapter started
// (the inbound doors', the widget's) are readable only by an adapter configured with readAllRuns;
// another adapter's runs never. Any other run is "not found", as a run that does not exist.
func (h *Handler) run(ctx context.Context, a *Adapter, req *events.APIGatewayV2HTTPRequest, own bool) (store.Run, error) {
	threadID, runID := req.PathParameters["threadId"], req.PathParameters["runId"]
	if !ids.Valid("run", runID) {
		return store.Run{}, apierr.New(apierr.NotFound, "run not found")
	}
	run, err := h.store.GetRun(ctx, a.Workspace, runID)
	if err != nil {
		if apierr.CodeOf(err) == apierr.NotFound {
			return store.Run{}, err
		}
		return store.Run{}, apierr.Wrap(apierr.Unavailable, err, "the run could not be read; retry later")
	}
	readable := run.Adapter == a.Name || !own && a.ReadAllRuns && run.Adapter == ""
	if run.ThreadID != threadID || !readable {
		return store.Run{}, apierr.New(apierr.NotFound, "run not found")
	}
	return run, nil
}

func (h *Handler) status(ctx context.Context, a *Adapter, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	run, err := h.run(ctx, a, req, false)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return apigw.JSON(http.StatusOK, View(run)), nil
}

// decision is the body of cancel, approve and deny.
type decision struct {
	User    string `json:"user"`
	Option  string `json:"option"`
	Comment string `json:"comment"`
	Token   string `json:"token"` // approve and deny: the approver's decision token (or ?token=)
}

func readDecision(req *events.APIGatewayV2HTTPRequest) (decision, error) {
	var d decision
	body, err := apigw.Body(req, 16<<10)
	if err != nil {
		return d, err
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := decodeStrict(body, &d); err != nil {
			return d, err
		}
	}
	d.User = strings.TrimSpace(d.User)
	return d, nil
}

// actor reads the body of cancel (or of a legacy approve or deny) and checks that its user may
// act on the run: the user who started it, or one of the adapter's approvers.
func (h *Handler) actor(a *Adapter, req *events.APIGatewayV2HTTPRequest, run store.Run, verb string) (decision, error) {
	d, err := readDecision(req)
	if err != nil {
		return d, err
	}
	return d, checkActor(a, run, d, verb)
}

func checkActor(a *Adapter, run store.Run, d decision, verb string) error {
	switch {
	case len(d.User) > maxUser || len(d.Option) > 256 || len(d.Comment) > 2000:
		return apierr.New(apierr.Invalid, "user, option or comment is too long")
	case d.User == "":
		return apierr.New(apierr.Invalid, "user is required")
	case d.User != run.User && !a.Approver(d.User):
		return apierr.New(apierr.Forbidden, "%s may not %s this run", truncate(d.User, 64), verb)
	}
	return nil
}

func (h *Handler) cancel(ctx context.Context, a *Adapter, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	run, err := h.run(ctx, a, req, true)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	d, err := h.actor(a, req, run, "cancel")
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	cancelled, err := h.store.CancelRun(ctx, a.Workspace, run.ID, d.User)
	switch {
	case apierr.CodeOf(err) == apierr.Conflict && cancelled.Status == store.RunCancelled:
		// Cancelled before (a retried request): record its event again, in case that failed.
	case apierr.CodeOf(err) == apierr.Conflict, apierr.CodeOf(err) == apierr.NotFound:
		return events.APIGatewayV2HTTPResponse{}, err
	case err != nil:
		return events.APIGatewayV2HTTPResponse{}, apierr.Wrap(apierr.Unavailable, err, "the run could not be cancelled; retry later")
	}
	if err := h.store.ReleaseSlot(ctx, cancelled); err != nil {
		h.log.WarnContext(ctx, "slot of a cancelled run not released; its lease frees it", "run_id", run.ID, "err", err)
	}
	if err := h.record(ctx, cancelled, EventRunCancelled, "", map[string]any{"cancelled_by": cancelled.CancelledBy}); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return apigw.JSON(http.StatusOK, View(cancelled)), nil
}

// Event types the adapter records.
const (
	EventRunCancelled = "run.cancelled"
	EventRunApproved  = "run.approved"
	EventRunDenied    = "run.denied"
)

// decide approves or denies a run waiting for approval. The approver proves itself with a
// decision token from the run.requires_approval event (in the body or ?token=), not with the
// adapter's secret: the token names the run, the approval request, the approver, the decision and
// the option, and expires. Only an adapter with legacyApprovals takes its secret and a user instead.
func (h *Handler) decide(ctx context.Context, req *events.APIGatewayV2HTTPRequest, approve bool) (events.APIGatewayV2HTTPResponse, error) {
	verb := approval.Deny
	if approve {
		verb = approval.Approve
	}
	d, err := readDecision(req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if len(d.Comment) > 2000 || len(d.Option) > 256 {
		return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Invalid, "option or comment is too long")
	}
	tok := d.Token
	if tok == "" {
		tok = req.QueryStringParameters["token"]
	}
	if tok == "" {
		return h.decideLegacy(ctx, req, approve, d)
	}
	if h.cfg.Approvals == nil {
		return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Forbidden, "decision token is invalid")
	}
	t, err := h.cfg.Approvals.Verify(tok)
	switch {
	case errors.Is(err, approval.ErrExpired):
		return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Forbidden, "decision token has expired")
	case err != nil:
		return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Forbidden, "decision token is invalid")
	}
	a, known, err := h.adapter(ctx, req.PathParameters["name"])
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	switch {
	case !known || t.Workspace != a.Workspace || t.RunID != req.PathParameters["runId"]:
		return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Forbidden, "decision token is not for this run")
	case t.Decision != verb:
		return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Forbidden, "decision token is for %s, not %s", t.Decision, verb)
	case d.Option != "" && d.Option != t.Option:
		return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Forbidden, "decision token is for another option")
	}
	run, err := h.run(ctx, a, req, true)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	ap := run.Approval
	switch {
	case ap == nil || ap.ID != t.RequestID:
		return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Conflict, "decision token answers another approval request of this run")
	case !slices.Contains(ap.Approvers, t.Approver):
		return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Forbidden, "decision token's approver may not decide this request")
	case t.Option != "" && !slices.Contains(ap.Options, t.Option):
		return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Forbidden, "decision token is for another option")
	}
	return h.apply(ctx, a, run, approve, store.Decision{RequestID: t.RequestID, Approved: approve, By: t.Approver, Option: t.Option, Comment: d.Comment})
}

// decideLegacy is approve and deny without a token: refused, unless the adapter keeps the old way
// (legacyApprovals), where its secret and a user (the run's, or an approver) decide.
func (h *Handler) decideLegacy(ctx context.Context, req *events.APIGatewayV2HTTPRequest, approve bool, d decision) (events.APIGatewayV2HTTPResponse, error) {
	a, err := h.authenticate(ctx, req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if !a.LegacyApprovals {
		return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Forbidden, "a decision token is required: approvers get theirs in the run.requires_approval event")
	}
	run, err := h.run(ctx, a, req, true)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	verb := "deny"
	if approve {
		verb = "approve"
	}
	if err := checkActor(a, run, d, verb); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	requestID := ""
	if run.Approval != nil {
		requestID = run.Approval.ID
		if run.Approval.Decision == "" && d.Option != "" && len(run.Approval.Options) > 0 && !slices.Contains(run.Approval.Options, d.Option) {
			return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Invalid, "option must be one of the run's approval options")
		}
	}
	return h.apply(ctx, a, run, approve, store.Decision{RequestID: requestID, Approved: approve, By: d.User, Option: d.Option, Comment: d.Comment})
}

// apply stores the decision, bound to the approval request it answers, records its event and
// hands it to the worker. A retry of the same decision answers as the first did.
func (h *Handler) apply(ctx context.Context, a *Adapter, run store.Run, approve bool, d store.Decision) (events.APIGatewayV2HTTPResponse, error) {
	want := store.DecisionDenied
	if approve {
		want = store.DecisionApproved
	}
	decided, err := h.store.DecideRun(ctx, a.Workspace, run.ID, d)
	retried := false
	switch {
	case apierr.CodeOf(err) == apierr.Conflict && decided.Approval != nil && decided.Approval.ID == d.RequestID &&
		decided.Approval.Decision == want && decided.Approval.DecidedBy == d.By && decided.Approval.Option == d.Option:
		// Decided so before (a retried request): record the event again in case that failed.
		retried = true
	case apierr.CodeOf(err) == apierr.Conflict && decided.Status == store.RunWaitingApproval:
		return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Conflict, "run waits for another approval request")
	case apierr.CodeOf(err) == apierr.Conflict:
		return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Conflict, "run is %s, not waiting for approval", decided.Status)
	case err != nil:
		return events.APIGatewayV2HTTPResponse{}, apierr.Wrap(apierr.Unavailable, err, "the decision could not be stored; retry later")
	}
	typ := EventRunDenied
	if approve {
		typ = EventRunApproved
	}
	ap := decided.Approval
	if err := h.record(ctx, decided, typ, ap.DecidedAt.String(), map[string]any{"approval_id": ap.ID, "decided_by": ap.DecidedBy, "option": ap.Option, "comment": ap.Comment}); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	// The worker tells the agent, in the thread's order; an approved run continues there. A
	// retry queues it again only while the worker may not have heard of it yet.
	if retried && decided.Status != store.RunQueued && decided.Status != store.RunDenied {
		return apigw.JSON(http.StatusOK, View(decided)), nil
	}
	if err := h.queue.SendInbound(ctx, &queue.Inbound{
		Version: queue.InboundVersion, WorkspaceID: a.Workspace, ThreadID: decided.ThreadID, RunID: decided.ID,
		MessageID: ids.Derive("msg", a.Workspace, decided.ID, "decision", ap.DecidedAt.String()),
		Source:    "adapter", Channel: Channel(a.Name), ExternalID: decided.ThreadID, User: d.By, Agent: a.Agent,
		ReceivedAt: h.now().UTC(), Decided: true,
	}); err != nil {
		return events.APIGatewayV2HTTPResponse{}, apierr.Wrap(apierr.Unavailable, err, "the decision is stored but could not be queued; send it again")
	}
	return apigw.JSON(http.StatusOK, View(decided)), nil
}

// record appends one event about the run, idempotently: its id derives from the run, the type
// and when (a run may be approved more than once).
func (h *Handler) record(ctx context.Context, run store.Run, typ, when string, extra map[string]any) error {
	data := map[string]any{"run_id": run.ID, "thread_id": run.ThreadID, "status": run.Status, "adapter": run.Adapter}
	if run.ReplyURL != "" {
		data["callback"] = true
	}
	for k, v := range extra {
		data[k] = v
	}
	b, err := json.Marshal(data)
	if err != nil {
		return apierr.Wrap(apierr.Internal, err, "internal error")
	}
	ev := store.Event{ID: ids.Derive("evt", run.WorkspaceID, run.ID, typ, when), Type: typ, WorkspaceID: run.WorkspaceID, Data: b}
	if _, err := h.store.AppendEvents(ctx, []store.Event{ev}); err != nil {
		return apierr.Wrap(apierr.Unavailable, err, "the change is stored but its event could not be recorded; retry")
	}
	return nil
}
