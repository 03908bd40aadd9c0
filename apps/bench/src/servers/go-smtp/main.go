// go-smtp (github.com/emersion/go-smtp, Debian's golang-github-emersion-go-smtp-dev) as a counting
// sink for the smtpkit bench: reads and counts each body, 32 MiB size limit, no AUTH required.
// Usage: go-smtp-sink PORT. Prints "ready" when listening; answers "stats" on stdin with JSON.
package main

import (
	"bufio"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"os"
	"sync/atomic"

	"github.com/emersion/go-smtp"
)

var messages, bytes, recipients int64

type backend struct{}

func (backend) Login(_ *smtp.ConnectionState, _, _ string) (smtp.Session, error) {
	return &session{}, nil
}

func (backend) AnonymousLogin(_ *smtp.ConnectionState) (smtp.Session, error) {
	return &session{}, nil
}

type session struct{ rcpts int64 }

func (s *session) Reset()        { s.rcpts = 0 }
func (s *session) Logout() error { return nil }
func (s *session) Mail(_ string, _ smtp.MailOptions) error {
	s.rcpts = 0
	return nil
}
func (s *session) Rcpt(_ string) error {
	s.rcpts++
	return nil
}
func (s *session) Data(r io.Reader) error {
	n, err := io.Copy(ioutil.Discard, r)
	if err != nil {
		return err
	}
	atomic.AddInt64(&messages, 1)
	atomic.AddInt64(&bytes, n)
	atomic.AddInt64(&recipients, s.rcpts)
	return nil
}

func main() {
	port := "0"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	s := smtp.NewServer(backend{})
	s.Domain = "bench.go-smtp.example"
	s.MaxMessageBytes = 33554432
	s.MaxRecipients = 0
	s.AllowInsecureAuth = true
	s.ErrorLog = nopLogger{}
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", l.Addr().(*net.TCPAddr).Port)
	go func() {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			if in.Text() == "stats" {
				fmt.Printf("{\"messages\":%d,\"bytes\":%d,\"recipients\":%d}\n",
					atomic.LoadInt64(&messages), atomic.LoadInt64(&bytes), atomic.LoadInt64(&recipients))
			}
		}
		os.Exit(0)
	}()
	_ = s.Serve(l)
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...interface{}) {}
func (nopLogger) Println(...interface{})        {}
