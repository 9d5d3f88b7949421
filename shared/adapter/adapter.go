// Package adapter serves the webhook adapter routes under /webhook/{name}: named adapters that
// internal systems use to talk to an agent over plain HTTP. For now it serves run status.
package adapter

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/apigw"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/verify"
)

// HeaderSecret carries the adapter secret when Authorization: Bearer is not used.
const HeaderSecret = "x-webhook-secret"

// Runs is the part of the store the adapter reads.
type Runs interface {
	GetRun(ctx context.Context, ws, id string) (store.Run, error)
}

// Config is the adapters' configuration.
type Config struct {
	Names     []string
	Workspace string
	Secrets   *verify.Secrets
}

// Handler handles the adapter routes.
type Handler struct {
	cfg  Config
	runs Runs
	log  *slog.Logger
}

// New returns a Handler.
func New(cfg Config, runs Runs, log *slog.Logger) *Handler {
	return &Handler{cfg: cfg, runs: runs, log: log}
}

// RunView is a run as the adapter routes show it.
type RunView struct {
	RunID       string        `json:"runId"`
	ThreadID    string        `json:"threadId"`
	Status      string        `json:"status"`
	Result      *store.Result `json:"result,omitempty"`
	Error       string        `json:"error,omitempty"`
	Attempts    int           `json:"attempts"`
	CreatedAt   time.Time     `json:"createdAt"`
	UpdatedAt   time.Time     `json:"updatedAt"`
	StartedAt   *time.Time    `json:"startedAt,omitempty"`
	CompletedAt *time.Time    `json:"completedAt,omitempty"`
}

// Handle is the Lambda handler.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	v, err := h.runStatus(ctx, &req)
	if err != nil {
		return apigw.Error(ctx, h.log, err), nil
	}
	return apigw.JSON(http.StatusOK, v), nil
}

func (h *Handler) runStatus(ctx context.Context, req *events.APIGatewayV2HTTPRequest) (RunView, error) {
	if err := h.authenticate(req); err != nil {
		return RunView{}, err
	}
	threadID, runID := req.PathParameters["threadId"], req.PathParameters["runId"]
	run, err := h.runs.GetRun(ctx, h.cfg.Workspace, runID)
	if err != nil {
		return RunView{}, err
	}
	if run.ThreadID != threadID {
		return RunView{}, apierr.New(apierr.NotFound, "run not found")
	}
	return RunView{
		RunID: run.ID, ThreadID: run.ThreadID, Status: run.Status, Result: run.Result, Error: run.Error,
		Attempts: run.Attempts, CreatedAt: run.CreatedAt, UpdatedAt: run.UpdatedAt,
		StartedAt: run.StartedAt, CompletedAt: run.CompletedAt,
	}, nil
}

// authenticate checks the adapter name and its secret. An unknown adapter and a wrong secret both
// get 401, so the response does not tell which adapter names exist.
func (h *Handler) authenticate(req *events.APIGatewayV2HTTPRequest) error {
	presented := apigw.Header(req, HeaderSecret)
	if auth := apigw.Header(req, "authorization"); presented == "" && len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		presented = strings.TrimSpace(auth[7:])
	}
	known := slices.Contains(h.cfg.Names, req.PathParameters["name"])
	if !h.cfg.Secrets.Equal(presented) || !known {
		return apierr.New(apierr.Unauthorized, "missing or invalid adapter secret")
	}
	return nil
}
