/**
 * Server-sent events read from a fetch response, so the request can carry the token header
 * (EventSource cannot). Calls `onEvent` for each event that carries data, in order; rejects when
 * the stream ends or `onEvent` throws, so the caller can reconnect.
 */
export async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (type: string, data: string) => void): Promise<never> {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const x = await reader.read();
    if (x.done) throw new Error('stream closed');
    buf += dec.decode(x.value, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let type = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) type = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length) onEvent(type, data.join('\n'));
    }
  }
}
