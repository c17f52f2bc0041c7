//! The simulated world: three sites (regions `a` and `b`, witness `w`), the control keyspace
//! they decide under `SERIAL`, each region's datacenter, the processes running the home-region
//! logic, and clients. Time moves in steps of [`STEP`] ms; everything random comes from the
//! seed, so a run is replayed exactly.

mod checks;
mod control;
mod data;
mod outcome;

use control::Control;
use data::{Answer, Datacenter, WalletKey};
use loyalty_region::keeper::{Action, Keeper, MOVE_QUIET, Sight};
use loyalty_region::lease::TTL;
use loyalty_region::route::{Directory, Route};
use loyalty_region::{Millis, Region};
pub use outcome::Outcome;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

const STEP: u64 = 100;
/// Steps with faults, then steps of calm in which everything heals and fails back.
const FAULTY_STEPS: u64 = 1_200;
const CALM_STEPS: u64 = 900;
const TENANTS: [(&str, usize); 4] = [("acme", 0), ("globex", 0), ("initech", 1), ("hooli", 1)];
/// Automatic failover after the peer failed its health checks this long.
const FAILOVER_AFTER: Millis = Millis(2_000);

/// One region's process: its keeper and router, on a clock of its own rate.
struct Process {
    keeper: Keeper,
    directory: Directory,
    /// Parts per million this clock runs fast (or slow, negative).
    drift_ppm: i64,
    /// The head versions its commits wrote and saw acknowledged by both datacenters, by
    /// wallet (the ledger's `carry.rs`); lost with the process.
    acknowledged: BTreeMap<data::WalletKey, u64>,
}

impl Process {
    fn new(me: &Region, peer: &Region, drift_ppm: i64) -> Self {
        Self {
            // The writes are synchronous (`EACH_QUORUM`): a cut between the regions ends with
            // one of them yielding.
            keeper: Keeper::new(me.clone(), peer.clone(), Some(FAILOVER_AFTER)).yield_in_cuts(true),
            directory: Directory::new(me.clone()),
            drift_ppm,
            acknowledged: BTreeMap::new(),
        }
    }

    fn clock(&self, t: u64) -> Millis {
        let t = t as i64;
        Millis((t + t * self.drift_ppm / 1_000_000) as u64)
    }
}

/// A client's write, retried until it has an answer.
struct Write {
    key: String,
    wallet: WalletKey,
    delta: i64,
    tries: u32,
    last_region: Option<usize>,
    /// The client's back-off: no try before this time.
    not_before: u64,
}

/// A failback under way: the tenants were marked moving at `since`.
struct Failback {
    to: usize,
    since: u64,
}

pub struct World {
    rng: StdRng,
    t: u64,
    regions: [Region; 2],
    up: [bool; 3],
    cut: [[bool; 3]; 3],
    control: Control,
    datacenters: [Datacenter; 2],
    processes: [Option<Process>; 2],
    pending: Vec<Write>,
    answers: BTreeMap<String, Answer>,
    acknowledged: Vec<(WalletKey, String, Answer)>,
    failback: Option<Failback>,
    next_key: u64,
    /// Since when the current cut between the regions alone has gone without an
    /// acknowledged write (true time, ms).
    cut_unwritten_since: Option<u64>,
    /// A heartbeat of the other region's has reached each region's datacenter.
    peer_beat_seen: [bool; 2],
    outcome: Outcome,
    /// What happened, for the report of a broken rule (the last lines).
    log: Vec<String>,
}

impl World {
    pub fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let regions = [Region::parse("a").unwrap(), Region::parse("b").unwrap()];
        let control = Control::new(&regions, &TENANTS);
        let mut process = |me: usize| {
            let drift = rng.random_range(-20_000..=20_000);
            Some(Process::new(&regions[me], &regions[1 - me], drift))
        };
        let processes = [process(0), process(1)];
        Self {
            rng,
            t: 0,
            up: [true; 3],
            cut: [[false; 3]; 3],
            control,
            datacenters: Default::default(),
            processes,
            regions,
            pending: Vec::new(),
            answers: BTreeMap::new(),
            acknowledged: Vec::new(),
            failback: None,
            next_key: 0,
            cut_unwritten_since: None,
            peer_beat_seen: [false; 2],
            outcome: Outcome::default(),
            log: Vec::new(),
        }
    }

    pub fn run(mut self) -> Outcome {
        for step in 0..FAULTY_STEPS + CALM_STEPS {
            let faulty = step < FAULTY_STEPS;
            if faulty {
                self.faults();
                self.new_writes();
            } else {
                self.heal();
            }
            self.keepers();
            self.failbacks();
            self.clients();
            self.measure_cut();
            if let Err(violation) = self.check_step() {
                let last = self.log.len().saturating_sub(40);
                let log = self.log[last..].join("\n  ");
                self.outcome.violation = Some(format!(
                    "at {} ms: {violation}\nwhat happened last:\n  {log}",
                    self.t
                ));
                return self.outcome;
            }
            self.t += STEP;
        }
        if let Err(violation) = self.check_end() {
            // The history of the key named, and every fault and move.
            let key = violation
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            let relevant: Vec<&String> = self
                .log
                .iter()
                .filter(|l| l.contains(&format!(" {key} ")) || !l.contains(" at region "))
                .collect();
            let last = relevant.len().saturating_sub(60);
            let log: Vec<&str> = relevant[last..].iter().map(|l| l.as_str()).collect();
            self.outcome.violation = Some(format!(
                "at the end: {violation}\nwhat happened:\n  {}",
                log.join("\n  ")
            ));
        }
        self.outcome
    }

    fn reach(&self, x: usize, y: usize) -> bool {
        self.up[x] && self.up[y] && (x == y || !self.cut[x][y])
    }

    /// The longest a cut between the regions alone went without an acknowledged write.
    fn measure_cut(&mut self) {
        if !self.cut_between_regions_only() {
            self.cut_unwritten_since = None;
            return;
        }
        let since = *self.cut_unwritten_since.get_or_insert(self.t);
        let unwritten = self.t - since;
        self.outcome.longest_unwritten_cut_ms =
            self.outcome.longest_unwritten_cut_ms.max(unwritten);
    }

    /// Both regions run and reach the witness, but not each other.
    fn cut_between_regions_only(&self) -> bool {
        self.up[0] && self.up[1] && self.cut[0][1] && self.majority(0) && self.majority(1)
    }

    /// Whether site `x` can decide in the control keyspace (a majority of the three sites).
    fn majority(&self, x: usize) -> bool {
        (0..3).filter(|&y| self.reach(x, y)).count() >= 2
    }

    fn note(&mut self, what: String) {
        self.log.push(format!("{:>6} ms {what}", self.t));
    }

    fn faults(&mut self) {
        let site = self.rng.random_range(0..3);
        if self.up[site] && self.rng.random_bool(0.003) {
            self.note(format!("site {site} crashes"));
            self.up[site] = false;
            if site < 2 {
                self.processes[site] = None;
            }
        } else if !self.up[site] && self.rng.random_bool(0.02) {
            self.note(format!("site {site} restarts"));
            self.restart(site);
        }
        let (x, y) = (self.rng.random_range(0..3), self.rng.random_range(0..3));
        if x != y {
            let cut = if self.cut[x][y] {
                !self.rng.random_bool(0.03)
            } else {
                self.rng.random_bool(0.004)
            };
            if cut != self.cut[x][y] {
                self.note(format!(
                    "link {x}-{y} {}",
                    if cut { "cut" } else { "healed" }
                ));
            }
            self.cut[x][y] = cut;
            self.cut[y][x] = cut;
        }
    }

    fn restart(&mut self, site: usize) {
        self.up[site] = true;
        if site < 2 {
            let drift = self.rng.random_range(-20_000..=20_000);
            let me = &self.regions[site];
            self.processes[site] = Some(Process::new(me, &self.regions[1 - site], drift));
        }
    }

    fn heal(&mut self) {
        for site in 0..3 {
            if !self.up[site] {
                self.restart(site);
            }
        }
        self.cut = [[false; 3]; 3];
    }

    fn new_writes(&mut self) {
        if !self.rng.random_bool(0.5) {
            return;
        }
        let (tenant, _) = TENANTS[self.rng.random_range(0..TENANTS.len())];
        let member = self.rng.random_range(0..3);
        let delta = if self.rng.random_bool(0.5) {
            self.rng.random_range(10..=50)
        } else {
            -self.rng.random_range(5..=60)
        };
        self.next_key += 1;
        self.pending.push(Write {
            key: format!("k{}", self.next_key),
            wallet: (tenant.to_string(), member),
            delta,
            tries: 0,
            last_region: None,
            not_before: 0,
        });
    }

    fn keepers(&mut self) {
        for me in 0..2 {
            let peer = 1 - me;
            let peer_healthy = self.processes[peer].is_some() && self.reach(me, peer);
            // Every action is a SERIAL round in the control keyspace, and so is the read of
            // the other region's lease row.
            let decides = self.majority(me);
            let peer_renewing = decides && self.control.renewing(peer, self.t);
            // The other region's heartbeats reach this datacenter while both run and reach
            // each other, and stay (a site's data outlives its crash).
            self.peer_beat_seen[me] |= self.processes[peer].is_some() && self.reach(me, peer);
            let peer_has_run = self.peer_beat_seen[me];
            let regions = self.regions.clone();
            let Some(process) = self.processes[me].as_mut() else {
                continue;
            };
            let now = process.clock(self.t);
            let sight = Sight {
                peer_healthy,
                peer_renewing,
                home_to_any: process.directory.is_home_to_any(&regions[me]),
                peer_home_to_any: process.directory.is_home_to_any(&regions[peer]),
                peer_has_run,
            };
            for action in process.keeper.tick(now, sight) {
                if !decides {
                    continue;
                }
                match action {
                    Action::Renew => {
                        if self.control.renew(me, self.t) {
                            process
                                .directory
                                .lease
                                .renewed(now, TTL, self.control.epoch);
                        } else {
                            process.directory.lease.lost();
                        }
                        if process.directory.stale() || !self.control.holds(me) {
                            let (epoch, homes) = self.control.homes();
                            process.directory.load(epoch, homes);
                        }
                    }
                    Action::TakeOver { .. } => {
                        if self.control.take_over(peer, me, self.t) {
                            self.log
                                .push(format!("{:>6} ms region {me} takes over {peer}", self.t));
                            process.keeper.took_over();
                            let (epoch, homes) = self.control.homes();
                            process.directory.load(epoch, homes);
                            self.outcome.failovers += 1;
                        }
                    }
                }
            }
        }
    }

    /// The operator's failback: once a lost region runs again and reaches the other and the
    /// witness, its datacenter is rebuilt from the other's, then its tenants are marked
    /// moving, and homed back after the quiet time.
    fn failbacks(&mut self) {
        if let Some(failback) = &self.failback {
            if self.t >= failback.since + MOVE_QUIET.0 + STEP {
                let to = failback.to;
                if self.majority(1 - to) {
                    self.control.finish_move(to);
                    self.failback = None;
                    self.outcome.failbacks += 1;
                }
            }
            return;
        }
        for lost in 0..2 {
            let survivor = 1 - lost;
            // Rebuilt only from a region that is itself current.
            let ready = self.control.lost[lost]
                && !self.control.lost[survivor]
                && self.processes[lost].is_some()
                && self.reach(lost, survivor)
                && self.majority(survivor);
            if ready {
                self.note(format!(
                    "failback to {lost} starts: rebuilt from {survivor}"
                ));
                self.datacenters[lost] = self.datacenters[survivor].clone();
                self.control.start_move(lost);
                self.failback = Some(Failback {
                    to: lost,
                    since: self.t,
                });
                return;
            }
        }
    }

    fn clients(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        pending.retain_mut(|write| {
            if write.not_before > self.t {
                return true;
            }
            let answered = self.attempt(write);
            if !answered {
                // Clients back off, some for long: a retry may come after a failover.
                write.not_before = self.t + self.rng.random_range(1..=50) * STEP;
            }
            !answered
        });
        pending.append(&mut self.pending);
        self.pending = pending;
    }

    /// One try of `write` through the global load balancer; whether it was answered.
    fn attempt(&mut self, write: &mut Write) -> bool {
        let healthy: Vec<usize> = (0..2).filter(|&r| self.processes[r].is_some()).collect();
        if healthy.is_empty() {
            return false;
        }
        let entry = healthy[self.rng.random_range(0..healthy.len())];
        write.tries += 1;
        let tenant = write.wallet.0.clone();
        let route = self.route(entry, &tenant, false);
        let home = match route {
            Route::Local { .. } => entry,
            Route::Forward { to } => {
                let to = usize::from(to != self.regions[0]);
                self.outcome.forwarded += 1;
                if self.processes[to].is_none() || !self.reach(entry, to) {
                    return false;
                }
                match self.route(to, &tenant, true) {
                    Route::Local { .. } => to,
                    _ => {
                        self.outcome.refused_fenced += 1;
                        return false;
                    }
                }
            }
            Route::Refuse(_) => {
                self.outcome.refused_fenced += 1;
                return false;
            }
        };
        if write.last_region.is_some_and(|r| r != home) {
            self.outcome.retried_elsewhere += 1;
        }
        write.last_region = Some(home);
        let Some(answer) = self.write_at(home, write) else {
            return false;
        };
        let line = format!(
            "{} {:?} {:+} at region {home} (entered {entry}): {answer:?}; dc0 {:?} dc1 {:?}",
            write.key,
            write.wallet,
            write.delta,
            self.datacenters[0]
                .wallets
                .get(&write.wallet)
                .map(|w| w.head.balance),
            self.datacenters[1]
                .wallets
                .get(&write.wallet)
                .map(|w| w.head.balance),
        );
        self.note(line);
        // The answer may be lost on its way back: the client retries with the same key.
        if self.rng.random_bool(0.05) {
            return false;
        }
        if let Some(first) = self.answers.insert(write.key.clone(), answer)
            && first != answer
        {
            self.outcome.violation =
                Some(format!("{} answered {first:?}, then {answer:?}", write.key));
        }
        self.acknowledged
            .push((write.wallet.clone(), write.key.clone(), answer));
        self.outcome.acknowledged += 1;
        if self.cut_between_regions_only() {
            self.outcome.acknowledged_in_cuts += 1;
            self.cut_unwritten_since = Some(self.t);
        }
        true
    }

    fn route(&self, region: usize, tenant: &str, forwarded: bool) -> Route {
        let process = self.processes[region].as_ref().unwrap();
        let now = process.clock(self.t);
        // A write may run 500 ms.
        process
            .directory
            .route(tenant, now, now.plus(Millis(500)), forwarded)
    }

    /// The home's conditional write with `EACH_QUORUM`: both datacenters have it before it
    /// is answered, unless the other region is lost (failed over), when it is written here.
    /// As the ledger does (`services/ledger/src/carry.rs`): each commit lists its key in the
    /// head, and the next carries the rows of those listed unless its process saw the head
    /// acknowledged; a replay first commits what is listed the same way; a key the head
    /// remembers without its record is refused for now.
    fn write_at(&mut self, home: usize, write: &Write) -> Option<Answer> {
        let peer = 1 - home;
        let both = !self.control.lost[peer];
        if both && !self.reach(home, peer) {
            return None;
        }
        let wallet = &write.wallet;
        let epoch = self.control.epoch.0;
        // A wallet's first commit in a new home runs its Paxos round in both datacenters: a
        // commit the old home left in its own datacenter alone is completed in this one
        // before this commit is checked against it.
        if both && self.datacenters[home].epoch_of(wallet) < epoch {
            data::complete_newest(&mut self.datacenters, wallet);
        }
        let acknowledged = (self.processes[home].as_ref())
            .and_then(|process| process.acknowledged.get(wallet).copied());
        let [dc0, dc1] = &mut self.datacenters;
        let (home_dc, peer_dc) = if home == 0 { (dc0, dc1) } else { (dc1, dc0) };
        let key = write.key.clone();
        let read = home_dc
            .wallets
            .get(wallet)
            .map(|w| w.head.clone())
            .unwrap_or_default();
        let unconfirmed = both && acknowledged != Some(read.version);
        if let Some(first) = home_dc.record(wallet, &key) {
            // A replay answers from the home's record once the commits not known to be in
            // both datacenters are: an empty commit carries their rows there first.
            if unconfirmed && !read.unconfirmed.is_empty() {
                home_dc.wallets.get_mut(wallet).unwrap().head.version += 1;
                let version = read.version + 1;
                let process = self.processes[home].as_mut().unwrap();
                process.acknowledged.remove(wallet);
                if self.rng.random_bool(0.02) {
                    return None;
                }
                peer_dc.replicate(home_dc, wallet, &read.unconfirmed);
                process.acknowledged.insert(wallet.clone(), version);
            }
            return Some(first);
        }
        if home_dc.remembers(wallet, &key) {
            // Applied, and only a later write's head has brought it here, not its record:
            // the ledger refuses it for now (UNAVAILABLE) rather than apply it twice.
            return None;
        }
        // The commits not known to be in both datacenters: their records ride along, unless
        // this process saw the commit that wrote the head acknowledged by both.
        let carried = match unconfirmed {
            true => read.unconfirmed.clone(),
            false => Vec::new(),
        };
        let answer = home_dc.apply(wallet, &key, write.delta, epoch);
        let mut rows = carried.clone();
        rows.push(key.clone());
        if both {
            let head = &mut home_dc.wallets.get_mut(wallet).unwrap().head;
            head.unconfirmed = rows.clone();
        }
        let version = home_dc.wallets.get(wallet).map_or(0, |w| w.head.version);
        let process = self.processes[home].as_mut().unwrap();
        process.acknowledged.remove(wallet);
        if both {
            // Sometimes the other region's acknowledgement is lost: the write is in the home
            // only, and the client is told it failed.
            if self.rng.random_bool(0.02) {
                return None;
            }
            peer_dc.replicate(home_dc, wallet, &rows);
            process.acknowledged.insert(wallet.clone(), version);
        }
        Some(answer)
    }
}
