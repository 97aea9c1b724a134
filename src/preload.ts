// Loaded before src/main.ts (`node --import ./src/preload.ts`, as `npm start` and the Dockerfile
// run it). libuv reads UV_THREADPOOL_SIZE once, when its pool first starts, so the size is set
// here, before anything has used it; an operator's own UV_THREADPOOL_SIZE wins.
import { defaultThreadpoolSize } from './threadpool.ts';

process.env.UV_THREADPOOL_SIZE ??= String(defaultThreadpoolSize());
