"""HTTP(S) serving with Twisted: routing, Basic-auth parsing, TLS, the worker threads, shutdown."""
