"""Your actions' tests (`make action` writes one beside each new action); `make test` runs them."""
