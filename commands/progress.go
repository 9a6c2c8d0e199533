package commands

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progressBar draws "re-encrypting [=====>    ] 120/1000" on a terminal's
// standard error, at most every 100 ms. On a pipe keytree draws nothing.
type progressBar struct {
	w     io.Writer
	label string
	mu    sync.Mutex
	last  time.Time
	drawn bool
}

// progress returns a progress callback for label, or nil when standard
// error is not a terminal.
func (e *env) progress(label string) (func(done, total int), func()) {
	if !e.stderrTTY {
		return nil, func() {}
	}
	p := &progressBar{w: e.stderr, label: label}
	return p.update, p.finish
}

func (p *progressBar) update(done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if done != total && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	const width = 30
	filled := width
	if total > 0 {
		filled = done * width / total
	}
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	fmt.Fprintf(p.w, "\r%s [%s] %d/%d", p.label, bar, done, total)
	p.drawn = true
}

func (p *progressBar) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
