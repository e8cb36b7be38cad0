"""The server-rendered pages: one module per area (overview, traces, sessions, judges, endpoints), each with
its views and its own `urlpatterns`, included by evalapp.urls."""
