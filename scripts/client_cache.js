// `make bench` step 9, node-redis half: reads per second over a hot set of
// keys through the proxy, with node-redis's own cache (clientSideCache,
// kept coherent by the proxy's CLIENT TRACKING) and without it.
//
// Usage: NODE_PATH=target/node/node_modules node scripts/client_cache.js RESP_PORT REDIS_PORT [SECONDS]
const { createClient } = require('redis');

const [respPort, redisPort] = process.argv.slice(2, 4).map(Number);
const seconds = Number(process.argv[4] || 3);
const keys = Array.from({ length: 100 }, (_, i) => `hot:${i}`);

async function rate(client) {
  let done = 0;
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    for (const key of keys) await client.get(key);
    done += keys.length;
  }
  return done / seconds;
}

(async () => {
  const direct = createClient({ socket: { port: redisPort } });
  await direct.connect();
  for (const key of keys) await direct.set(key, 'v'.repeat(100));
  const plain = createClient({ socket: { port: respPort }, RESP: 3 });
  const cached = createClient({
    socket: { port: respPort },
    RESP: 3,
    clientSideCache: { ttl: 0, maxEntries: 0 },
  });
  await plain.connect();
  await cached.connect();
  const without = await rate(plain);
  const withCache = await rate(cached);
  console.log(
    `node-redis through the proxy: ${Math.round(without).toLocaleString('en')} reads/s without its cache, ` +
      `${Math.round(withCache).toLocaleString('en')} with it (${Math.round(withCache / without)}x)`,
  );
  await Promise.all([plain.quit(), cached.quit(), direct.quit()]);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
