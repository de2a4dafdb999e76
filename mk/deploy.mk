# Deployment targets (iso, sign, verify, ipxe, repro): see docs/deploy.md.
