package openapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// document is a served body kept gzip-compressed: the documents are large
// (the core group's is about 700 KB of JSON) and compress about tenfold.
// Clients that accept gzip, as every Go client does, get the stored bytes;
// others get them decompressed on the fly.
type document struct {
	gz          []byte
	size        int
	etag        string // upper-case hex SHA-512 of the uncompressed body
	contentType string
}

// newDocument compresses body.
func newDocument(body []byte, contentType string) (*document, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(body); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &document{gz: buf.Bytes(), size: len(body), etag: ETag(body), contentType: contentType}, nil
}

// ETag is kube-apiserver's ETag of a document: the upper-case hex SHA-512
// of its bytes.
func ETag(body []byte) string { return fmt.Sprintf("%X", sha512.Sum512(body)) }

// serve writes the document with its ETag, answering 304 to a matching
// If-None-Match.
func (d *document) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	etag := strconv.Quote(d.etag)
	h.Set("ETag", etag)
	h.Add("Vary", "Accept-Encoding")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", d.contentType)
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		h.Set("Content-Length", strconv.Itoa(len(d.gz)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(d.gz)
		}
		return
	}
	h.Set("Content-Length", strconv.Itoa(d.size))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	zr, err := gzip.NewReader(bytes.NewReader(d.gz))
	if err == nil {
		_, _ = io.Copy(w, zr)
	}
}

// acceptsGzip reports whether an Accept-Encoding header admits gzip.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if coding = strings.TrimSpace(coding); coding != "gzip" && coding != "*" {
			continue
		}
		q, found := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
		if !found {
			return true
		}
		v, err := strconv.ParseFloat(q, 64)
		return err == nil && v > 0
	}
	return false
}
