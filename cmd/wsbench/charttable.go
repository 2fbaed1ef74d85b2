package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/wsforge/terraform-aws-websocket/bench"
)

// The lines of `wsbench fanout` output that the chart is drawn from.
var (
	ceilingLine = regexp.MustCompile(`^Machine ceiling .*: ([0-9.]+) calls/s`)
	standInLine = regexp.MustCompile(`^Stand-in: .*token bucket ([0-9.]+)/s`)
)

// fanoutTableRows reads the first fan-out table of a markdown document
// written by `wsbench fanout` (its output as pasted into docs/benchmarks.md,
// or artifacts/fanout.md): the rate limit from the "Stand-in:" line, the
// machine ceiling from the "Machine ceiling" line before it, if any, and
// N, strategy and accepted calls/s of each row.
func fanoutTableRows(text string) (rows []row, limit, ceiling float64, err error) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	inTable := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case limit == 0 && ceilingLine.MatchString(line):
			ceiling, _ = strconv.ParseFloat(ceilingLine.FindStringSubmatch(line)[1], 64)
		case limit == 0 && standInLine.MatchString(line):
			limit, _ = strconv.ParseFloat(standInLine.FindStringSubmatch(line)[1], 64)
		case limit > 0 && strings.HasPrefix(line, "| N | strategy |"):
			inTable = true
		case inTable && strings.HasPrefix(line, "| ---"):
		case inTable && strings.HasPrefix(line, "|"):
			cells := strings.Split(strings.Trim(line, "|"), "|")
			if len(cells) < 9 {
				return nil, 0, 0, fmt.Errorf("fan-out table row %q: %d cells, want 12", line, len(cells))
			}
			n, errN := strconv.Atoi(strings.TrimSpace(cells[0]))
			st, errS := bench.ParseStrategy(strings.TrimSpace(cells[1]))
			rate, errR := strconv.ParseFloat(strings.TrimSpace(cells[8]), 64)
			if err := errors.Join(errN, errS, errR); err != nil {
				return nil, 0, 0, fmt.Errorf("fan-out table row %q: %w", line, err)
			}
			var r row
			r.N, r.Strategy, r.Rate = n, st, rate
			rows = append(rows, r)
		case inTable:
			return rows, limit, ceiling, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, 0, 0, err
	}
	if len(rows) == 0 {
		return nil, 0, 0, errors.New("no fan-out table (a \"Stand-in: ... token bucket N/s\" line followed by a \"| N | strategy |\" table)")
	}
	return rows, limit, ceiling, nil
}

// runChart draws the rate chart of the first fan-out table in a markdown
// file, so the chart committed beside docs/benchmarks.md is always the one
// of the table published there.
func runChart(args []string) error {
	fs := flag.NewFlagSet("chart", flag.ExitOnError)
	from := fs.String("from", "docs/benchmarks.md", "markdown file holding `wsbench fanout` output")
	out := fs.String("out", "docs/benchmarks-rate.svg", "SVG file to write; - for stdout")
	_ = fs.Parse(args)
	text, err := os.ReadFile(*from)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	rows, limit, ceiling, err := fanoutTableRows(string(text))
	if err != nil {
		return fmt.Errorf("chart from %s: %w", *from, err)
	}
	svg := rateChart(rows, limit, ceiling)
	if *out == "-" {
		_, err = os.Stdout.WriteString(svg)
		return err
	}
	return os.WriteFile(*out, []byte(svg), 0o644)
}
