# console-proxy's image: `docker build -t console-proxy .` at the top of a checkout. Three stages:
# the demo console built with npm (pinned by package-lock.json), the wheel built with it inside, and a slim
# runtime with only the installed wheel, run as a user of its own. tests/test_dockerfile.py runs the build
# stages' commands for real, as written here.
# The wheel stage is the full Python image, which has a C compiler: the hot path is compiled with mypyc
# (CONSOLE_PROXY_PURE=0: compiled, or the build fails). The wheel is then for CPython 3.11 on Debian bookworm's
# glibc, which is what the slim runtime is; keep the two tags on the same Python and Debian release.

FROM node:20-bookworm-slim AS console
WORKDIR /src/console
COPY console/package.json console/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY console/build.mjs ./
COPY console/src ./src
COPY static /src/static
# Writes ../static/dist/main.js.
RUN npm run build

FROM python:3.11-bookworm AS wheel
WORKDIR /src
COPY pyproject.toml hatch_build.py README.md LICENSE route_rules.yaml ./
COPY console_proxy ./console_proxy
COPY static ./static
COPY --from=console /src/static/dist ./static/dist
RUN CONSOLE_PROXY_PURE=0 pip wheel --no-cache-dir --no-deps --wheel-dir wheels .

FROM python:3.11-slim-bookworm
COPY --from=wheel /src/wheels /tmp/wheels
RUN pip install --no-cache-dir "$(ls /tmp/wheels/console_proxy-*.whl)[redis]" && rm -rf /tmp/wheels \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/console-proxy --create-home console-proxy
USER console-proxy
# The local event file or the spool lives here: keep it on a volume. Listen on every address of the container.
ENV CONSOLE_PROXY_HOST=0.0.0.0 \
    CONSOLE_PROXY_STATE_DIR=/var/lib/console-proxy
VOLUME ["/var/lib/console-proxy"]
EXPOSE 9695
# Ready: rules loaded, WebSocket served, and the queue can take a batch (127.0.0.1 is always a Host it answers).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9695/readyz', timeout=2)"]
ENTRYPOINT ["console-proxy"]
CMD ["serve"]
