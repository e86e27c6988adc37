//! Transactions through the proxy (#21) with client libraries as an
//! application uses them, unchanged: redis-py's `pipeline()` (a MULTI/EXEC
//! transaction by default) and its WATCH helpers, node-redis's and
//! ioredis's `multi()` and `watch()`. Each script prints what it saw; a
//! WATCH conflict is made both directly at Redis and through the proxy.

use crate::common::{run_ok, InProcess, RedisServer};

/// Where `make test` installs node-redis and ioredis (scripts/lib.sh).
const NODE_MODULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/node/node_modules");

/// Redis, the proxy in front of it (RESP on), and the output of the script
/// `script(proxy_port, redis_port)` run by `program`.
fn run_script(program: &str, script: fn(u16, u16) -> String) -> String {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    let script = script(proxy.resp_addr().port(), redis.port());
    let (flag, env) = match program {
        "node" => ("-e", vec![("NODE_PATH", NODE_MODULES)]),
        _ => ("-c", vec![]),
    };
    run_ok(program, &[flag, &script], &env)
}

#[test]
fn redis_py_pipelines_and_watch_conflicts_work_through_the_proxy() {
    let out = run_script("python3", |proxy, redis| {
        format!(
            r#"import redis
for protocol in (2, 3):
    p = redis.Redis(port={proxy}, protocol=protocol)
    other = redis.Redis(port={proxy}, protocol=protocol)
    d = redis.Redis(port={redis})
    k = lambda name: f'{{protocol}}:{{name}}'
    d.set(k('a'), '1')
    d.set(k('b'), '2')
    print(p.get(k('a')))
    with p.pipeline() as pipe:
        print(pipe.get(k('a')).get(k('b')).get(k('none')).execute())
    with p.pipeline() as pipe:
        print(pipe.set(k('c'), '3').incr(k('n')).get(k('c')).delete(k('a')).get(k('a')).execute())
    print(d.get(k('c')), d.exists(k('a')), p.get(k('a')))
    def attempt(changer):
        with p.pipeline() as pipe:
            pipe.watch(k('w'))
            pipe.get(k('w'))
            if changer is not None:
                changer.set(k('w'), 'theirs')
            pipe.multi()
            pipe.set(k('w'), 'mine')
            try:
                pipe.execute()
                outcome = 'committed'
            except redis.WatchError:
                outcome = 'WatchError'
        return f"{{outcome}} {{d.get(k('w')).decode()}} {{p.get(k('w')).decode()}}"
    print(attempt(d))
    print(attempt(other))
    print(attempt(None))
    first = [True]
    def add_ten(pipe):
        value = int(pipe.get(k('t')) or 0)
        if first[0]:
            first[0] = False
            d.incr(k('t'))
        pipe.multi()
        pipe.set(k('t'), value + 10)
    p.transaction(add_ten, k('t'))
    print(d.get(k('t')), p.get(k('t')))
"#
        )
    });
    let round = "b'1'\n\
                 [b'1', b'2', None]\n\
                 [True, 1, b'3', 1, None]\n\
                 b'3' 0 None\n\
                 WatchError theirs theirs\n\
                 WatchError theirs theirs\n\
                 committed mine mine\n\
                 b'11' b'11'\n";
    assert_eq!(out, round.repeat(2));
}

/// The node script shared by node-redis and ioredis: `setup` opens `p`,
/// `other` (both through the proxy) and `d` (Redis directly) for each of
/// `rounds`; `failed(changer)` makes a WATCH conflict and prints how the
/// library reported it.
fn node_script(setup: &str, rounds: &str, conflict: &str) -> String {
    format!(
        "{setup}\n\
         (async () => {{\n\
           for (const round of {rounds}) {{\n\
             const [p, other, d] = await open(round);\n\
             const k = (name) => `${{round}}:${{name}}`;\n\
             await d.set(k('a'), '1');\n\
             console.log(await p.get(k('a')));\n\
             console.log(JSON.stringify(await p.multi().get(k('a')).get(k('none')).exec()));\n\
             console.log(JSON.stringify(await p.multi().set(k('c'), '3').incr(k('n')).get(k('c')).del(k('a')).get(k('a')).exec()));\n\
             console.log(await d.get(k('c')), await d.exists(k('a')), await p.get(k('a')));\n\
             const attempt = async (changer) => {{\n\
               await p.watch(k('w'));\n\
               await p.get(k('w'));\n\
               if (changer) await changer.set(k('w'), 'theirs');\n\
               const outcome = await ({conflict})(p.multi().set(k('w'), 'mine'));\n\
               return `${{outcome}} ${{await d.get(k('w'))}} ${{await p.get(k('w'))}}`;\n\
             }};\n\
             console.log(await attempt(d));\n\
             console.log(await attempt(other));\n\
             console.log(await attempt(null));\n\
             for (const c of [p, other, d]) await c.quit();\n\
           }}\n\
         }})().catch(e => {{ console.error(e); process.exit(1); }});\n"
    )
}

#[test]
fn node_redis_multi_and_watch_work_through_the_proxy() {
    let out = run_script("node", |proxy, redis| {
        let setup = format!(
            "const {{ createClient }} = require('redis');\n\
             async function open(RESP) {{\n\
               const clients = [createClient({{ socket: {{ port: {proxy} }}, RESP }}),\n\
                                createClient({{ socket: {{ port: {proxy} }}, RESP }}),\n\
                                createClient({{ socket: {{ port: {redis} }} }})];\n\
               for (const c of clients) await c.connect();\n\
               return clients;\n\
             }}"
        );
        let conflict = "async (multi) => { try { await multi.exec(); return 'committed'; } \
                        catch (e) { return e.constructor.name; } }";
        node_script(&setup, "[2, 3]", conflict)
    });
    let round = "1\n\
                 [\"1\",null]\n\
                 [\"OK\",1,\"3\",1,null]\n\
                 3 0 null\n\
                 WatchError theirs theirs\n\
                 WatchError theirs theirs\n\
                 committed mine mine\n";
    assert_eq!(out, round.repeat(2));
}

#[test]
fn ioredis_multi_and_watch_work_through_the_proxy() {
    let out = run_script("node", |proxy, redis| {
        let setup = format!(
            "const Redis = require('ioredis');\n\
             async function open() {{\n\
               return [new Redis({{ port: {proxy} }}), new Redis({{ port: {proxy} }}),\n\
                       new Redis({{ port: {redis} }})];\n\
             }}"
        );
        // ioredis reports a WATCH conflict as EXEC's null.
        let conflict = "async (multi) => (await multi.exec()) === null ? 'null' : 'committed'";
        node_script(&setup, "['io']", conflict)
    });
    assert_eq!(
        out,
        "1\n\
         [[null,\"1\"],[null,null]]\n\
         [[null,\"OK\"],[null,1],[null,\"3\"],[null,1],[null,null]]\n\
         3 0 null\n\
         null theirs theirs\n\
         null theirs theirs\n\
         committed mine mine\n"
    );
}
