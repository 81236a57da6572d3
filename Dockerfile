# The HTTP API (and CPU-only daemons): small, non-root, Node 24.
#   docker build -t faceswap-api .
#   docker run -p 3000:3000 -e DATABASE_URL=postgres://... faceswap-api
# Node 24 runs the TypeScript sources directly (type stripping): no build step.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: Node comes from the image, the API never starts an embedded
# Postgres in a container (set DATABASE_URL), and onnxruntime-node already ships
# its CPU provider (its script would only fetch CUDA libraries; see Dockerfile.gpu).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    WORKER=off \
    DATA_DIR=/data \
    MODELS_DIR=/models
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY lib ./lib
COPY worker ./worker
COPY migrations ./migrations
COPY models/manifest.json ./models/manifest.json
COPY scripts ./scripts
RUN mkdir -p /data /models && chown node:node /data /models
USER node
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health').then(r=>process.exit(r.status<500?0:1),()=>process.exit(1))"
CMD ["node", "src/main.ts"]
