"""Who may do what: the viewer/editor roles (accounts.roles) and personal API tokens (accounts.models.ApiToken,
accounts.auth). The bottom layer: it imports nothing of traces, judges or evalapp."""
