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

// Command barehost is the baseline of the load benchmark (hack/benchreport): a bare
// net/http server doing the same work as pluginhost's counter per request — read the body,
// parse {"value": N}, one atomic add, write the JSON answer — with nothing else (no config,
// routing table, auth, slots or metrics). It answers POST /plugins/counter-1/increment and
// GET /plugins/counter-1/get, and logs the JSON line pluginhost logs once it listens.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
)

func main() {
	listen := flag.String("listen", ":8080", "listen address")
	flag.String("log-format", "json", "ignored (pluginhost's flag)")
	flag.Parse()
	var n atomic.Int64
	answer := func(w http.ResponseWriter, op string, v int64) {
		w.Header().Set("Content-Type", "application/json")
		b := make([]byte, 0, 64)
		b = append(b, `{"plugin":"counter-1","operation":"`...)
		b = append(b, op...)
		b = append(b, `","value":`...)
		b = strconv.AppendInt(b, v, 10)
		b = append(b, "}\n"...)
		_, _ = w.Write(b)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /plugins/counter-1/increment", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 4096))
		var req struct{ Value *int64 }
		if err != nil || json.Unmarshal(body, &req) != nil {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		v := int64(1)
		if req.Value != nil {
			v = *req.Value
		}
		answer(w, "increment", n.Add(v))
	})
	mux.HandleFunc("GET /plugins/counter-1/get", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, "get", n.Load())
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rec, _ := json.Marshal(map[string]string{"level": "INFO", "msg": "Serving plugins", "addr": ln.Addr().String()})
	fmt.Fprintln(os.Stderr, string(rec))
	if err := http.Serve(ln, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
