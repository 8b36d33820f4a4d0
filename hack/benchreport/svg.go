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

package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// A small SVG writer for the report's figures: no dependencies, deterministic output.

const (
	svgW, svgH                   = 640, 360
	padL, padR, padT, padB       = 70, 170, 40, 50
	plotW, plotH                 = svgW - padL - padR, svgH - padT - padB
	svgFont                      = `font-family="sans-serif" font-size="12"`
	svgAxis                      = `stroke="#333" stroke-width="1"`
	svgGrid                      = `stroke="#ddd" stroke-width="1"`
	svgTitleSize, svgLegendWidth = 14, 160
)

var svgColors = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"}

type series struct {
	name  string
	ys    []float64
	dash  bool
	color int
}

// niceMax rounds v up to 1, 2 or 5 × a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func svgHeader(sb *strings.Builder, title, xlabel, ylabel string) {
	fmt.Fprintf(sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" %s>`+"\n", svgW, svgH, svgW, svgH, svgFont)
	fmt.Fprintf(sb, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgW, svgH)
	fmt.Fprintf(sb, `<text x="%d" y="22" font-size="%d" font-weight="bold">%s</text>`+"\n", padL, svgTitleSize, esc(title))
	fmt.Fprintf(sb, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", padL+plotW/2, svgH-10, esc(xlabel))
	fmt.Fprintf(sb, `<text transform="translate(16,%d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", padT+plotH/2, esc(ylabel))
}

// yAxis draws horizontal grid lines and labels from 0 to ymax; it returns the y of a value.
func yAxis(sb *strings.Builder, ymax float64, format func(float64) string) func(float64) float64 {
	y := func(v float64) float64 { return padT + plotH - v/ymax*plotH }
	for i := 0; i <= 5; i++ {
		v := ymax * float64(i) / 5
		fmt.Fprintf(sb, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" %s/>`+"\n", padL, padL+plotW, y(v), y(v), svgGrid)
		fmt.Fprintf(sb, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padL-6, y(v)+4, format(v))
	}
	fmt.Fprintf(sb, `<line x1="%d" x2="%d" y1="%d" y2="%d" %s/>`+"\n", padL, padL+plotW, padT+plotH, padT+plotH, svgAxis)
	fmt.Fprintf(sb, `<line x1="%d" x2="%d" y1="%d" y2="%d" %s/>`+"\n", padL, padL, padT, padT+plotH, svgAxis)
	return y
}

// lineChart plots series over categorical x values (evenly spaced, e.g. concurrencies).
func lineChart(title, xlabel, ylabel string, xs []string, ss []series) string {
	var sb strings.Builder
	svgHeader(&sb, title, xlabel, ylabel)
	var ymax float64
	for _, s := range ss {
		for _, v := range s.ys {
			ymax = math.Max(ymax, v)
		}
	}
	y := yAxis(&sb, niceMax(ymax*1.05), func(v float64) string { return fmt.Sprintf("%.0f", v) })
	x := func(i int) float64 {
		if len(xs) == 1 {
			return padL + plotW/2
		}
		return padL + 20 + float64(i)*float64(plotW-40)/float64(len(xs)-1)
	}
	for i, l := range xs {
		fmt.Fprintf(&sb, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(i), padT+plotH+18, esc(l))
	}
	for k, s := range ss {
		c := svgColors[s.color%len(svgColors)]
		var pts []string
		for i, v := range s.ys {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
		}
		dash := ""
		if s.dash {
			dash = ` stroke-dasharray="6,4"`
		}
		fmt.Fprintf(&sb, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), c, dash)
		for _, p := range pts {
			xy := strings.Split(p, ",")
			fmt.Fprintf(&sb, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", xy[0], xy[1], c)
		}
		ly := padT + 10 + k*20
		fmt.Fprintf(&sb, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", svgW-svgLegendWidth, svgW-svgLegendWidth+24, ly, ly, c, dash)
		fmt.Fprintf(&sb, `<text x="%d" y="%d">%s</text>`+"\n", svgW-svgLegendWidth+30, ly+4, esc(s.name))
	}
	sb.WriteString("</svg>\n")
	return sb.String()
}

// histogram plots the distribution of vs in bins of width `width` from 0.
func histogram(title, xlabel string, vs []float64, width float64, note string) string {
	var sb strings.Builder
	svgHeader(&sb, title, xlabel, "changes")
	var vmax float64
	for _, v := range vs {
		vmax = math.Max(vmax, v)
	}
	n := int(math.Floor(vmax/width)) + 1
	counts := make([]int, n)
	for _, v := range vs {
		counts[int(math.Floor(v/width))]++
	}
	var cmax float64
	for _, c := range counts {
		cmax = math.Max(cmax, float64(c))
	}
	y := yAxis(&sb, math.Max(5, math.Ceil(cmax/5)*5), func(v float64) string { return fmt.Sprintf("%.0f", v) }) // integer ticks
	bw := float64(plotW) / float64(n)
	for i, c := range counts {
		fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", padL+float64(i)*bw+1, y(float64(c)), math.Max(bw-2, 1), padT+plotH-y(float64(c)), svgColors[0])
	}
	step := max(1, n/8)
	for i := 0; i <= n; i += step {
		fmt.Fprintf(&sb, `<text x="%.1f" y="%d" text-anchor="middle">%.0f</text>`+"\n", padL+float64(i)*bw, padT+plotH+18, float64(i)*width)
	}
	for k, l := range strings.Split(note, "\n") {
		fmt.Fprintf(&sb, `<text x="%d" y="%d">%s</text>`+"\n", svgW-svgLegendWidth, padT+10+k*18, esc(l))
	}
	sb.WriteString("</svg>\n")
	return sb.String()
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// writeFigure writes docs/img/<name> and returns the link to use from docs/performance.md.
func writeFigure(name, svg string) (string, error) {
	if err := os.MkdirAll(filepath.Join("docs", "img"), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join("docs", "img", name), []byte(svg), 0o644); err != nil {
		return "", err
	}
	return "img/" + name, nil
}
