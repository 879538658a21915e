# The action's image: a static octopush binary and the CA bundle, nothing else (about 10 MB).
# Releases publish it prebuilt (see .github/workflows/release.yml) and point action.yml at it for fast starts;
# `uses: ./` and act build it from this file.
FROM rust:1-alpine AS build
RUN apk add --no-cache musl-dev ca-certificates
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY examples ./examples
COPY action.yml ./
RUN cargo build --release --locked && cp target/release/octopush /octopush

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /octopush /usr/local/bin/octopush
# The runner mounts the workspace and file-command directories owned by root: run as root, as it requires.
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
ENTRYPOINT ["/usr/local/bin/octopush"]
