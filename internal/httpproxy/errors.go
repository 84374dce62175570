package httpproxy

import (
	"errors"
	"strconv"
)

// errorTexts are the proxy's own answers. The bodies are fixed: nothing from the
// request is ever reflected into them.
var errorTexts = map[int]string{
	400: "Bad Request",
	403: "Forbidden",
	408: "Request Timeout",
	431: "Request Header Fields Too Large",
	501: "Not Implemented",
	502: "Bad Gateway",
	504: "Gateway Timeout",
	505: "HTTP Version Not Supported",
}

var errorBodies = map[int]string{
	400: "The request is not a valid proxy request.\n",
	403: "The egress policy does not allow this destination.\n",
	408: "The request head did not arrive in time.\n",
	431: "The request head is too large.\n",
	501: "This transfer coding is not supported.\n",
	502: "The destination could not be reached.\n",
	504: "The destination did not answer in time.\n",
	505: "Only HTTP/1.0 and HTTP/1.1 are spoken here.\n",
}

// errorResponses holds each complete answer, built once.
var errorResponses = func() map[int]string {
	m := map[int]string{}
	for status, text := range errorTexts {
		body := errorBodies[status]
		m[status] = "HTTP/1.1 " + strconv.Itoa(status) + " " + text + "\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\n" +
			"Content-Length: " + strconv.Itoa(len(body)) + "\r\n" +
			"Connection: close\r\n\r\n" + body
	}
	return m
}()

func errorResponse(status int) string { return errorResponses[status] }

// statusForHeadError picks the answer to a request head that could not be read.
func statusForHeadError(err error) int {
	switch {
	case errors.Is(err, errHeadTooLarge):
		return 431
	case errors.Is(err, errVersion):
		return 505
	}
	return 400
}

// statusForUpstreamError picks the answer to a destination that was refused, could not
// be reached or did not answer.
func statusForUpstreamError(err error) int {
	switch {
	case errors.Is(err, errDenied):
		return 403
	case errors.Is(err, errTimeout) || isTimeout(err):
		return 504
	}
	return 502
}
