package chaos

import (
	"encoding/json"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// share maps a key to 0..99, the same for every copy of it.
func share(key string) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % 100)
}

// server is an HTTP server on a loopback port of its own.
type server struct {
	URL string
	srv *http.Server
}

func serve(h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{URL: "http://" + ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *server) Close() { _ = s.srv.Close() }

// receipt is what a receiver saw of one webhook-id.
type receipt struct {
	typ   string
	runID string // data.run_id of run.* events
	ok    int    // requests answered 2xx (or held past the sender's timeout, then taken)
}

// receiver is a subscriber's endpoint. With faults on, it answers 500 to the first attempt of 30%
// of the events and holds the first attempt of 2% past the sender's timeout (then takes it, as a
// slow endpoint whose work was done: the sender retries, a duplicate before dedup).
type receiver struct {
	faults bool
	hang   time.Duration

	mu       sync.Mutex
	byID     map[string]*receipt
	attempts map[string]int // every request by webhook-id
	failed   int            // 500s answered
	hung     int
	last     time.Time // the last receipt taken
}

func newReceiver(faults bool, hang time.Duration) *receiver {
	return &receiver{faults: faults, hang: hang, byID: map[string]*receipt{}, attempts: map[string]int{}}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id := req.Header.Get("webhook-id")
	var env struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			RunID string `json:"run_id"`
		} `json:"data"`
	}
	if id == "" || json.Unmarshal(body, &env) != nil || env.ID != id {
		http.Error(w, "bad envelope", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.attempts[id]++
	first := r.attempts[id] == 1
	r.mu.Unlock()
	if r.faults && first {
		switch s := share("r" + id); {
		case s < 30:
			r.mu.Lock()
			r.failed++
			r.mu.Unlock()
			w.WriteHeader(http.StatusInternalServerError)
			return
		case s < 32:
			r.mu.Lock()
			r.hung++
			r.mu.Unlock()
			select {
			case <-time.After(r.hang):
			case <-req.Context().Done(): // the sender gave up; the work is done all the same
			}
		}
	}
	r.mu.Lock()
	rc := r.byID[id]
	if rc == nil {
		rc = &receipt{typ: env.Type, runID: env.Data.RunID}
		r.byID[id] = rc
	}
	rc.ok++
	r.last = time.Now()
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// agent is a webhook agent that speaks back the text it is given. With faults on, it answers 500
// to the first call of 5% of the runs and holds the first call of 2% past its timeout.
type agent struct {
	faults bool
	hang   time.Duration

	mu      sync.Mutex
	calls   map[string]int // user_speak calls by run id
	failed  int
	hung    int
	callsN  int
	started int // session_start calls
}

func newAgent(faults bool, hang time.Duration) *agent {
	return &agent{faults: faults, hang: hang, calls: map[string]int{}}
}

func (a *agent) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var in struct {
		Type  string `json:"type"`
		Text  string `json:"text"`
		RunID string `json:"run_id"`
	}
	if err := json.NewDecoder(req.Body).Decode(&in); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if in.Type != "user_speak" {
		a.mu.Lock()
		a.started++
		a.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	a.mu.Lock()
	a.calls[in.RunID]++
	first := a.calls[in.RunID] == 1
	a.callsN++
	a.mu.Unlock()
	if a.faults && first {
		switch s := share("a" + in.RunID); {
		case s < 5:
			a.mu.Lock()
			a.failed++
			a.mu.Unlock()
			w.WriteHeader(http.StatusInternalServerError)
			return
		case s < 7:
			a.mu.Lock()
			a.hung++
			a.mu.Unlock()
			select {
			case <-time.After(a.hang):
			case <-req.Context().Done():
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"type": "speak", "text": in.Text})
}
