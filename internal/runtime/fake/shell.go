package fake

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// The fake runs container commands with a tiny interpreter that knows what
// the contract suite and kubelet tests use, with busybox's behaviour:
//
//	sh [-c SCRIPT] statements separated by ; or newlines (read from stdin
//	               without -c); "CMD &" starts CMD in the background (the
//	               fake does not run it); ">&2" sends a statement's output
//	               to stderr
//	echo ARGS, hostname, cat (copies stdin), true, false,
//	sleep SECONDS|inf, wait (until a signal), exit N, exec CMD,
//	trap 'exit N' TERM
//
// As under Docker, a main process (PID 1) ignores SIGTERM unless it traps
// it; SIGKILL ends it with 137. Unlike busybox, a trapped SIGTERM also
// interrupts a foreground sleep.

type sigKind int

const (
	sigTerm sigKind = iota
	sigKill
	sigForce // Runtime.Exit: end with a given code
)

type sig struct {
	kind sigKind
	code int
}

func sigExit(code int) sig { return sig{kind: sigForce, code: code} }

var (
	sigTermV = sig{kind: sigTerm}
	sigKillV = sig{kind: sigKill}
)

// process is one running command: a container's main process or an exec.
type process struct {
	pid1     bool
	hostname string
	sigs     chan sig      // signals sent to it
	done     chan struct{} // closed by the container's goroutine when it ends
	trap     *int          // exit code on SIGTERM, once trapped
}

func newProcess(pid1 bool, hostname string) *process {
	return &process{pid1: pid1, hostname: hostname, sigs: make(chan sig, 8), done: make(chan struct{})}
}

// signal delivers s without blocking (excess signals are dropped).
func (p *process) signal(s sig) {
	select {
	case p.sigs <- s:
	default:
	}
}

// run runs argv and returns its exit code.
func (p *process) run(argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	code, _ := p.command(argv, stdin, stdout, stderr)
	return code
}

// command runs one command; stop says the process must end (exit or a
// signal), with code.
func (p *process) command(argv []string, stdin io.Reader, stdout, stderr io.Writer) (code int, stop bool) {
	if len(argv) == 0 {
		return 0, false
	}
	switch argv[0] {
	case "sh", "/bin/sh":
		if len(argv) == 1 { // a script on stdin
			src, _ := io.ReadAll(stdin)
			return p.script(string(src), strings.NewReader(""), stdout, stderr)
		}
		if len(argv) < 3 || argv[1] != "-c" {
			fmt.Fprintln(stderr, "sh: the fake supports only sh and sh -c")
			return 2, false
		}
		return p.script(argv[2], stdin, stdout, stderr)
	case "echo":
		fmt.Fprintln(stdout, strings.Join(argv[1:], " "))
	case "hostname":
		fmt.Fprintln(stdout, p.hostname)
	case "cat":
		if len(argv) > 1 {
			fmt.Fprintf(stderr, "cat: can't open '%s': the fake has no files\n", argv[1])
			return 1, false
		}
		_, _ = io.Copy(stdout, stdin)
	case "true":
	case "false":
		return 1, false
	case "sleep":
		d := time.Duration(math.MaxInt64)
		if len(argv) > 1 && argv[1] != "inf" && argv[1] != "infinity" {
			s, err := strconv.ParseFloat(argv[1], 64)
			if err != nil {
				fmt.Fprintf(stderr, "sleep: invalid number '%s'\n", argv[1])
				return 1, false
			}
			d = time.Duration(s * float64(time.Second))
		}
		return p.wait(d)
	case "wait":
		return p.wait(time.Duration(math.MaxInt64))
	case "exit":
		n := 0
		if len(argv) > 1 {
			n, _ = strconv.Atoi(argv[1])
		}
		return n, true
	case "exec":
		p.trap = nil
		code, _ := p.command(argv[1:], stdin, stdout, stderr)
		return code, true
	case "trap":
		if len(argv) == 3 && argv[2] == "TERM" {
			if f := strings.Fields(argv[1]); len(f) == 2 && f[0] == "exit" {
				n, _ := strconv.Atoi(f[1])
				p.trap = &n
				return 0, false
			}
		}
		fmt.Fprintln(stderr, "trap: the fake supports only trap 'exit N' TERM")
		return 1, false
	default:
		fmt.Fprintf(stderr, "sh: %s: not found\n", argv[0])
		return 127, false
	}
	return 0, false
}

// wait sleeps for d, handling signals as the process's disposition says.
func (p *process) wait(d time.Duration) (code int, stop bool) {
	var timeout <-chan time.Time
	if d < time.Duration(math.MaxInt64) {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case <-timeout:
			return 0, false
		case s := <-p.sigs:
			switch {
			case s.kind == sigKill:
				return 137, true
			case s.kind == sigForce:
				return s.code, true
			case p.trap != nil:
				return *p.trap, true
			case !p.pid1:
				return 143, true
			}
		}
	}
}

// script runs the statements of an sh -c script.
func (p *process) script(src string, stdin io.Reader, stdout, stderr io.Writer) (code int, stop bool) {
	stmts, err := parse(src)
	if err != nil {
		fmt.Fprintln(stderr, "sh:", err)
		return 2, false
	}
	for _, s := range stmts {
		if s.background {
			continue
		}
		out := stdout
		if s.toStderr {
			out = stderr
		}
		code, stop = p.command(s.argv, stdin, out, stderr)
		if stop {
			return code, true
		}
	}
	return code, false
}

type statement struct {
	argv       []string
	background bool
	toStderr   bool
}

// parse splits a script into statements, honouring single and double
// quotes.
func parse(src string) ([]statement, error) {
	var (
		out   []statement
		cur   statement
		tok   strings.Builder
		inTok bool
	)
	endTok := func() {
		if inTok {
			cur.argv = append(cur.argv, tok.String())
			tok.Reset()
			inTok = false
		}
	}
	endStmt := func(bg bool) {
		endTok()
		if len(cur.argv) > 0 {
			cur.background = bg
			out = append(out, cur)
		}
		cur = statement{}
	}
	for i := 0; i < len(src); i++ {
		switch ch := src[i]; ch {
		case '\'', '"':
			j := strings.IndexByte(src[i+1:], ch)
			if j < 0 {
				return nil, fmt.Errorf("unterminated quote")
			}
			tok.WriteString(src[i+1 : i+1+j])
			inTok = true
			i += j + 1
		case ' ', '\t':
			endTok()
		case ';', '\n':
			endStmt(false)
		case '&':
			endStmt(true)
		case '>':
			endTok()
			if !strings.HasPrefix(src[i:], ">&2") {
				return nil, fmt.Errorf("the fake supports only the redirection >&2")
			}
			cur.toStderr = true
			i += 2
		default:
			tok.WriteByte(ch)
			inTok = true
		}
	}
	endStmt(false)
	return out, nil
}
