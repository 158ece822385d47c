// hello and echo (size=N, POST echo) on Go's net/http/fcgi, for
// benches/compare.sh. Usage: go-fcgi hello|echo; the socket is on fd 0.
package main

import (
	"io"
	"net/http"
	"net/http/fcgi"
	"os"
	"strconv"
)

func main() {
	echo := len(os.Args) > 1 && os.Args[1] == "echo"
	piece := make([]byte, 65520)
	for i := range piece {
		piece[i] = byte('a' + i%26)
	}
	fcgi.Serve(nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if !echo {
			io.WriteString(w, "Hello, World!\n")
			return
		}
		if s := r.URL.Query().Get("size"); s != "" {
			n, _ := strconv.Atoi(s)
			for n > 0 {
				k := len(piece)
				if n < k {
					k = n
				}
				w.Write(piece[:k])
				n -= k
			}
			return
		}
		if r.Method == "POST" || r.Method == "PUT" {
			body, _ := io.ReadAll(r.Body)
			w.Write(body)
		}
	}))
}
