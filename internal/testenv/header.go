package testenv

import (
	"net/http"
	"slices"
	"strings"
)

// HeaderLines renders h as sorted "Key: v1, v2" lines without Date, for comparing two
// responses' headers.
func HeaderLines(h http.Header) string {
	var lines []string
	for k, vv := range h {
		if k == "Date" {
			continue
		}
		lines = append(lines, k+": "+strings.Join(vv, ", "))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
