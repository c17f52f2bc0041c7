//! The rules a run must keep: checked after every step, and once everything has healed.

use super::data::Answer;
use super::{TENANTS, World};
use loyalty_region::route::Route;
use std::collections::BTreeSet;

impl World {
    pub(super) fn check_step(&self) -> Result<(), String> {
        for (tenant, _) in TENANTS {
            let writers: Vec<usize> = (0..2)
                .filter(|&r| self.processes[r].is_some())
                .filter(|&r| matches!(self.route(r, tenant, true), Route::Local { .. }))
                .collect();
            if writers.len() > 1 {
                return Err(format!("both regions may write {tenant}"));
            }
        }
        for dc in &self.datacenters {
            if let Some((wallet, balance)) = dc.lowest_balance()
                && balance < 0
            {
                return Err(format!("{wallet:?} overdrawn: {balance}"));
            }
        }
        match &self.outcome.violation {
            Some(violation) => Err(violation.clone()),
            None => Ok(()),
        }
    }

    pub(super) fn check_end(&self) -> Result<(), String> {
        if !self.pending.is_empty() {
            return Err(format!(
                "{} writes still unanswered after everything healed",
                self.pending.len()
            ));
        }
        for (wallet, key, answer) in &self.acknowledged {
            let home = self.control.home_index(&wallet.0);
            let held = self.datacenters[home].wallets.get(wallet);
            let effects = held.map_or(0, |w| w.head.effects.iter().filter(|k| *k == key).count());
            let recorded = self.datacenters[home].recorded(wallet, key);
            let expected = usize::from(matches!(answer, Answer::Applied(_)));
            if effects != expected {
                return Err(format!(
                    "{key} acknowledged as {answer:?}, applied {effects} times in its home"
                ));
            }
            if recorded.is_some_and(|r| r != *answer) {
                return Err(format!(
                    "{key} acknowledged as {answer:?}, held as {recorded:?}"
                ));
            }
        }
        for dc in &self.datacenters {
            for (wallet, w) in &dc.wallets {
                let mut seen = BTreeSet::new();
                if let Some(twice) = w.head.effects.iter().find(|k| !seen.insert(*k)) {
                    return Err(format!("{twice} applied twice to {wallet:?}"));
                }
            }
        }
        Ok(())
    }
}
