# Latchkey runs its TypeScript sources directly on Node 24 (type stripping): no build step.
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY src ./src
COPY migrations ./migrations
COPY views ./views
USER node
# Node's compile cache keeps the type-stripped sources on disk, so a starting server does not load
# the TypeScript stripper (about 20 MB of memory that would stay). It is filled here, as the user
# that runs the server (the cache is per user): main.ts loads every module, then stops at the
# config check (PORT is not a number). See docs/operations.md "Memory".
ENV NODE_COMPILE_CACHE=/home/node/.cache/node-compile-cache
# V8 keeps cached code only for the same flags, so the fill runs with the flags of CMD.
RUN PORT=fill-compile-cache node --expose-gc --max-semi-space-size=16 --max-old-space-size=1536 --import ./src/preload.ts src/main.ts >/dev/null 2>&1; test -d "$NODE_COMPILE_CACHE"
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD ["node", "-e", "fetch('http://127.0.0.1:3000/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The heap flags and the thread-pool preload are those of `npm start` (docs/operations.md).
CMD ["node", "--expose-gc", "--max-semi-space-size=16", "--max-old-space-size=1536", "--import", "./src/preload.ts", "src/main.ts"]
