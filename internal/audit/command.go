/*
Copyright 2026 The plugin-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package audit

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Exit codes of Command.
const (
	ExitOK     = 0
	ExitBroken = 1
	ExitUsage  = 2
)

// Command is `pluginhost audit verify [-o table|json] [--expect SEQ:HASH] FILE…`: it
// verifies the trail made of FILEs (rotated segments are put before the current one, by
// sequence, whatever the order given), prints its records and says where verification
// begins; it exits ExitBroken naming the first break, ExitUsage for bad arguments or
// files that cannot be read.
func Command(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(stderr, "usage: pluginhost audit verify [-o table|json] [--expect SEQ:HASH] FILE...")
		return ExitUsage
	}
	fs := flag.NewFlagSet("pluginhost audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "table", "output: table or json")
	expect := fs.String("expect", "", "SEQ:HASH of a record seen before (a PluginHost's status.pods[].auditHead): fail if the trail no longer holds it")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: pluginhost audit verify [flags] FILE...\n\nVerifies a hash-chained audit trail and prints its records. FILEs are its segments\n(<path> and <path>.<sequence>); exits 1 at the first broken record.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if *out != "table" && *out != "json" {
		fmt.Fprintf(stderr, "-o %q: use table or json\n", *out)
		return ExitUsage
	}
	var want *expected
	if *expect != "" {
		e, err := parseExpect(*expect)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return ExitUsage
		}
		want = e
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "no FILE: give the trail's segments (e.g. /var/lib/pluginhost/audit.jsonl*)")
		return ExitUsage
	}
	res, err := Verify(SortSegments(fs.Args()))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	problems := problemsOf(res, want)
	if *out == "json" {
		doc := struct {
			*Result
			Verified bool     `json:"verified"`
			Problems []string `json:"problems,omitempty"`
		}{res, len(problems) == 0, problems}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			fmt.Fprintln(stderr, err)
			return ExitUsage
		}
	} else {
		printTable(stdout, res)
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, "BROKEN:", p)
		}
		return ExitBroken
	}
	return ExitOK
}

type expected struct {
	seq  uint64
	hash string
}

func parseExpect(s string) (*expected, error) {
	seq, hash, ok := strings.Cut(s, ":")
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil || n == 0 || hash == "" {
		return nil, fmt.Errorf("--expect %q: want SEQ:HASH, e.g. 42:9f86d081884c7d65…", s)
	}
	return &expected{seq: n, hash: hash}, nil
}

// problemsOf lists why the trail does not verify: its breaks, and a record expected but
// missing or different.
func problemsOf(res *Result, want *expected) []string {
	var out []string
	for _, b := range res.Breaks {
		p := b.String()
		if b.Acknowledged {
			p += " (recorded by the host in a break record)"
		}
		out = append(out, p)
	}
	if want == nil {
		return out
	}
	for _, e := range res.Entries {
		if e.Record.Seq != want.seq || e.Record.Hash == "" {
			continue
		}
		if !strings.HasPrefix(e.Record.Hash, want.hash) {
			out = append(out, fmt.Sprintf("seq %d (%s line %d): rewritten: its hash is %s, %s was seen before", want.seq, e.File, e.Line, short(e.Record.Hash), want.hash))
		}
		return out
	}
	switch {
	case res.MaxSeq < want.seq:
		out = append(out, fmt.Sprintf("seq %d, seen before, is missing: the trail ends at seq %d: truncated", want.seq, res.MaxSeq))
	default:
		out = append(out, fmt.Sprintf("seq %d, seen before, is not in the given segments (verification begins at seq %d): removed by rotation, or a segment is missing", want.seq, res.From))
	}
	return out
}

func printTable(w io.Writer, res *Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tRESULT\tREVISION\tSTATUS\tDETAIL")
	for _, e := range res.Entries {
		r := e.Record
		if r.Hash == "" {
			fmt.Fprintf(tw, "-\t-\t-\t-\t-\t%s\t%s line %d: %q\n", e.Status, e.File, e.Line, clip(e.Raw, 60))
			continue
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.Format("2006-01-02T15:04:05.000Z07:00"), r.Kind, r.Result, shortRev(r.Revision), e.Status, detail(r))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	switch {
	case res.Head == nil && len(res.Entries) == 0:
		fmt.Fprintln(w, "empty trail")
	case res.Head != nil:
		from := fmt.Sprintf("from seq %d (genesis)", res.From)
		if !res.FromGenesis {
			from = fmt.Sprintf("from seq %d (older records were removed by rotation: verification begins here)", res.From)
		}
		fmt.Fprintf(w, "chain %s: %d records in %d files, verified %s; head seq %d %s\n", res.Chain, len(res.Entries), len(res.Files), from, res.Head.Seq, res.Head.Hash)
	}
	for _, b := range res.Breaks {
		state := "NOT recorded by the host yet"
		if b.Acknowledged {
			state = "recorded by the host in a break record"
		}
		fmt.Fprintf(w, "break at %s (%s)\n", b, state)
	}
}

func detail(r Record) string {
	var parts []string
	switch r.Kind {
	case KindGenesis:
		parts = append(parts, "chain "+r.Chain)
		if r.Pod != "" {
			parts = append(parts, "pod "+r.Pod)
		}
	case KindBreak:
		parts = append(parts, fmt.Sprintf("broken at seq %d: %s", r.BrokenAt, r.Reason))
	}
	for _, n := range r.Added {
		parts = append(parts, "+"+n)
	}
	for _, n := range r.Removed {
		parts = append(parts, "-"+n)
	}
	for _, n := range r.Changed {
		parts = append(parts, "~"+n)
	}
	if r.Error != "" {
		parts = append(parts, clip(r.Error, 80))
	}
	return strings.Join(parts, " ")
}

func shortRev(rev string) string {
	if len(rev) > len("sha256:")+12 {
		return rev[:len("sha256:")+12]
	}
	return rev
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
