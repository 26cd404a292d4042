"""Stage 5: per family, the minimal apt-get install diff that makes every service run."""
