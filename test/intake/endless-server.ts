/**
 * A hostile image server run as a child process by fetch-limits.test.ts, so
 * that its own buffers do not count in the memory measured in the test.
 *
 *   GET /endless      200, no Content-Length, 64 KiB chunks forever
 *   GET /tiny-frames  200, chunked encoding of one-byte frames forever
 *
 * Prints {"port": N} on start and {"sent": bytes} whenever a client hangs up.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const chunk = Buffer.alloc(64 * 1024, 0xab);
const frames = Buffer.from('1\r\nX\r\n'.repeat(10_000)); // 10000 one-byte chunks per write

const server = http.createServer((req, res) => {
  let sent = 0;
  res.on('close', () => process.stdout.write(`${JSON.stringify({ sent })}\n`));
  if (req.url === '/tiny-frames') {
    // Write the chunked framing ourselves on the raw socket.
    const socket = res.socket!;
    res.detachSocket(socket);
    socket.write('HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ntransfer-encoding: chunked\r\n\r\n');
    socket.on('close', () => process.stdout.write(`${JSON.stringify({ sent })}\n`));
    socket.on('error', () => {});
    const pump = (): void => {
      while (!socket.destroyed) {
        sent += frames.length;
        if (!socket.write(frames)) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    pump();
    return;
  }
  res.writeHead(200, { 'content-type': 'image/jpeg' });
  const pump = (): void => {
    while (!res.destroyed && !res.writableEnded) {
      sent += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
  };
  pump();
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.on('disconnect', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
