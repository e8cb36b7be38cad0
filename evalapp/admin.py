"""evalapp registers nothing in the admin: its one model, OverviewHour, is a cache of sums that is rebuilt from the
raw rows. API tokens and the editors group are administered through the accounts app (accounts/admin.py)."""
