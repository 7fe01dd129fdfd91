"""The front doors: each protocol translates its wire format into calls of operations/ and back. A new
protocol is a sibling package here; it touches no use case. messages.py holds the HTTP-neutral request
and reply the protocols work on."""
