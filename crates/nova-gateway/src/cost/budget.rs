//! Cost budgets per caller and time window, in the style of GitHub's points per hour: each
//! request is charged its estimated cost before it runs and refunded the difference to its
//! actual cost afterwards. Windows are fixed: the first charge opens one, it resets `window`
//! later. In-process and bounded: at most `max_keys` callers are tracked, and a caller idle for
//! a whole window is evicted (its next request would find a fresh window anyway).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;

/// Callers tracked at most; beyond this the least recently used are evicted.
pub const DEFAULT_MAX_KEYS: u64 = 100_000;

#[derive(Debug)]
struct Window {
    opened: Instant,
    remaining: u64,
}

/// The per-caller budgets of one node.
#[derive(Clone)]
pub struct CostBudget {
    points: u64,
    window: Duration,
    windows: Cache<String, Arc<Mutex<Window>>>,
}

/// A caller's budget after a charge or refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetState {
    pub limit: u64,
    pub remaining: u64,
    /// Time until the window resets.
    pub reset_in: Duration,
}

/// A successful charge, to settle once the actual cost is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    pub charged: u64,
    opened: Instant,
    pub state: BudgetState,
}

impl CostBudget {
    pub fn new(points: u64, window: Duration, max_keys: u64) -> CostBudget {
        CostBudget {
            points,
            window,
            windows: Cache::builder()
                .max_capacity(max_keys)
                .time_to_idle(window)
                .build(),
        }
    }

    pub fn points(&self) -> u64 {
        self.points
    }

    fn window_of(&self, key: &str) -> Arc<Mutex<Window>> {
        let window = self.window;
        let points = self.points;
        let entry = self.windows.get_with_by_ref(key, || {
            Arc::new(Mutex::new(Window {
                opened: Instant::now(),
                remaining: points,
            }))
        });
        if let Ok(mut current) = entry.lock() {
            if current.opened.elapsed() >= window {
                current.opened = Instant::now();
                current.remaining = points;
            }
        }
        entry
    }

    fn state(&self, window: &Window) -> BudgetState {
        BudgetState {
            limit: self.points,
            remaining: window.remaining,
            reset_in: self.window.saturating_sub(window.opened.elapsed()),
        }
    }

    /// Charges `cost` to `key`, or returns its state (with the time to wait) when fewer points
    /// remain than `cost`.
    pub fn charge(&self, key: &str, cost: u64) -> Result<Charge, BudgetState> {
        let entry = self.window_of(key);
        let Ok(mut window) = entry.lock() else {
            // A poisoned lock only follows a panic elsewhere; do not punish the caller for it.
            return Ok(Charge {
                charged: 0,
                opened: Instant::now(),
                state: BudgetState {
                    limit: self.points,
                    remaining: self.points,
                    reset_in: self.window,
                },
            });
        };
        if window.remaining < cost {
            return Err(self.state(&window));
        }
        window.remaining -= cost;
        Ok(Charge {
            charged: cost,
            opened: window.opened,
            state: self.state(&window),
        })
    }

    /// Gives back what `charge` took beyond `actual` (in the same window only) and returns the
    /// caller's state.
    pub fn settle(&self, key: &str, charge: &Charge, actual: u64) -> BudgetState {
        let entry = self.window_of(key);
        let Ok(mut window) = entry.lock() else {
            return charge.state;
        };
        if window.opened == charge.opened {
            let refund = charge.charged.saturating_sub(actual);
            window.remaining = window.remaining.saturating_add(refund).min(self.points);
        }
        self.state(&window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_refunds_and_refuses_when_exhausted() {
        let budget = CostBudget::new(100, Duration::from_secs(3600), 10);
        let charge = budget.charge("a", 60).expect("within budget");
        assert_eq!(charge.state.remaining, 40);
        let refused = budget.charge("a", 50).expect_err("over budget");
        assert_eq!(refused.remaining, 40);
        assert!(refused.reset_in > Duration::from_secs(3500));
        // Other callers have budgets of their own.
        assert_eq!(budget.charge("b", 100).expect("b").state.remaining, 0);
        let settled = budget.settle("a", &charge, 10);
        assert_eq!(settled.remaining, 90);
        // A refund never exceeds the budget.
        let settled = budget.settle("a", &charge, 0);
        assert_eq!(settled.remaining, 100);
    }

    #[test]
    fn a_new_window_restores_the_budget() {
        let budget = CostBudget::new(10, Duration::from_millis(50), 10);
        let charge = budget.charge("a", 10).expect("charge");
        assert!(budget.charge("a", 1).is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(budget.charge("a", 1).expect("fresh").state.remaining, 9);
        // A refund for the old window is not applied to the new one.
        assert_eq!(budget.settle("a", &charge, 0).remaining, 9);
    }

    #[test]
    fn memory_stays_bounded() {
        let budget = CostBudget::new(10, Duration::from_secs(3600), 100);
        for i in 0..10_000 {
            let _ = budget.charge(&format!("ip:{i}"), 1);
        }
        budget.windows.run_pending_tasks();
        assert!(budget.windows.entry_count() <= 100);
    }
}
