//! A small lab run on real servers, asserting what the README table claims, per
//! fault, exactly: the schedule is seeded and every interleaving scripted, so each
//! strategy's stale count is a function of how many episodes had each fault.

use std::collections::HashMap;

use vset_lab::proxy::FaultProxy;
use vset_lab::run::{replay_all, Figures};
use vset_lab::schedule::{self, Fault};
use vset_lab::strategy;
use vset_tests::postgres::PgCluster;
use vset_tests::redis::{RedisOptions, RedisServer};

/// Private servers and the strategies `wanted` names, with the lab's defaults.
struct Lab {
    pg: PgCluster,
    _redis: RedisServer,
    _proxy: FaultProxy,
    strategies: std::cell::RefCell<Vec<Box<dyn strategy::Strategy>>>,
}

impl Lab {
    fn start(keys: i32, wanted: &dyn Fn(&str) -> bool) -> Self {
        let pg = PgCluster::start().expect("postgres");
        pg.create_extension().expect("extension");
        let redis = RedisServer::start(RedisOptions::new()).expect("redis");
        let proxy = FaultProxy::start(redis.port()).expect("proxy");
        let strategies = strategy::build(
            &pg.url(),
            &proxy,
            keys,
            strategy::Hardening::default(),
            strategy::RELAY_OUTAGE,
            wanted,
        )
        .expect("strategies");
        Self {
            pg,
            _redis: redis,
            _proxy: proxy,
            strategies: std::cell::RefCell::new(strategies),
        }
    }

    fn replay(&self, plan: &[schedule::Episode], keys: i32) -> Vec<Figures> {
        replay_all(&mut self.strategies.borrow_mut(), plan, keys).expect("replay")
    }
}

#[test]
fn each_fault_hurts_exactly_the_strategies_it_should() {
    let keys = 20;
    let plan = schedule::build(5, 80, keys, 2);
    let mut n: HashMap<Fault, u64> = HashMap::new();
    for e in &plan {
        *n.entry(e.fault).or_default() += 1;
    }
    let count = |f: Fault| n.get(&f).copied().unwrap_or(0);
    for f in Fault::ALL {
        assert!(count(f) > 0, "the schedule must contain {f:?}");
    }
    let late_fills = plan
        .iter()
        .filter(|e| e.fault == Fault::FillRace && !e.fill_early)
        .count() as u64;

    let lab = Lab::start(keys, &|_| true);
    let figures = lab.replay(&plan, keys);
    let by: HashMap<&str, &Figures> = figures.iter().map(|f| (f.strategy.as_str(), f)).collect();
    let stale = |s: &str, f: Fault| by[s].stale_by_fault.get(&f).copied().unwrap_or(0);

    // Fault-free episodes never end stale, for anyone.
    for f in &figures {
        assert_eq!(stale(&f.strategy, Fault::None), 0, "{}", f.strategy);
    }
    let (crash, outage, late, fill, evict) = (
        count(Fault::Crash),
        count(Fault::Outage),
        count(Fault::LateRetry),
        count(Fault::FillRace),
        count(Fault::EvictThenLate),
    );
    assert!(evict > 0, "the plan holds no eviction + late retry episode");
    let expect = |s: &str, want: [u64; 5], lost: u64| {
        let got = [
            stale(s, Fault::Crash),
            stale(s, Fault::Outage),
            stale(s, Fault::LateRetry),
            stale(s, Fault::FillRace),
            stale(s, Fault::EvictThenLate),
        ];
        assert_eq!(
            got, want,
            "{s}: stale after crash/outage/late/fill/evict+late"
        );
        assert_eq!(by[s].lost_writes, lost, "{s}: lost writes");
    };
    expect("write-through", [crash, outage, late, fill, evict], 0);
    // The late flush writes the older value into the database (lost), but the
    // evicted key is a miss, not a stale hit.
    expect(
        "write-behind",
        [crash, 0, late, fill, 0],
        crash + late + evict,
    );
    expect("cache-aside", [crash, outage, 0, fill, 0], 0);
    expect("double-delete", [0, 0, 0, late_fills, 0], 0);
    expect("outbox-set", [crash, 0, late, late_fills, evict], 0);
    // The strongest rival ties vset on every fault but the one where its version,
    // kept in the cache entry, is evicted with it.
    expect("outbox-lua-cas", [0, 0, 0, 0, evict], 0);
    expect("vset", [0, 0, 0, 0, 0], 0);
    assert_eq!(by["write-behind"].failed_writes, outage);
    assert_eq!(by["vset"].stale_keys_at_end, 0);
    // Where vset pays: during a relay outage every relayed strategy serves the
    // older value for the outage's length; the write-path strategies do not.
    let outages = count(Fault::RelayOutage);
    assert!(outages > 0, "the plan holds no relay outage");
    let floor = strategy::RELAY_OUTAGE * outages as u32;
    for s in ["outbox-set", "outbox-lua-cas", "vset"] {
        assert!(
            by[s].time_stale >= floor,
            "{s}: {:?} stale, expected at least {floor:?} from {outages} relay outages",
            by[s].time_stale
        );
    }
    // vset's only stale time is the outages' (plus the drain after each).
    assert!(
        by["vset"].time_stale < floor * 3,
        "vset: {:?} stale for {floor:?} of relay outages",
        by["vset"].time_stale
    );
}

/// Versions above 2^53: the Lua rival compares doubles, so a newer version that
/// rounds to the same double as the stored one is refused and the older value
/// stays; vset compares exact u64s.
#[test]
fn above_2_pow_53_the_lua_rival_goes_stale_and_vset_does_not() {
    let keys = 10;
    let plan = schedule::build(9, 40, keys, 1);
    let lab = Lab::start(keys, &|s| matches!(s, "outbox-lua-cas" | "vset"));
    let mut c = lab.pg.client().expect("client");
    for seq in ["lab_cas_seq", "vset.version_seq"] {
        c.execute(
            "SELECT setval($1::text::regclass, $2)",
            &[&seq, &(1i64 << 53)],
        )
        .expect("setval");
    }
    let figures = lab.replay(&plan, keys);
    let by: HashMap<&str, &Figures> = figures.iter().map(|f| (f.strategy.as_str(), f)).collect();
    assert!(
        by["outbox-lua-cas"].stale() > 0,
        "the rival never went stale above 2^53: {:?}",
        by["outbox-lua-cas"]
    );
    assert_eq!(by["vset"].stale(), 0, "{:?}", by["vset"]);
    assert_eq!(by["vset"].stale_keys_at_end, 0);
}
