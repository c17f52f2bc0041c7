//! Caches of committed rows for the embedded store. The store has exactly one writer (its writer
//! thread), so it can keep a cache exact: the writer updates it after each durable commit, and a
//! reader's fill can never install a row older than one the writer already put.

use quick_cache::sync::Cache;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

/// Generation counters, each shared by the keys that hash to it. A writer update to one key
/// only spoils concurrent fills of keys in its shard, so under a steady stream of writes the
/// readers' fills of other keys still succeed.
const SHARDS: usize = 1024;

/// A bounded cache of committed values, kept current by the single writer.
pub struct CommittedCache<K, V> {
    cache: Cache<K, V>,
    /// Bumped by every writer update of a key in the shard. A reader fills the cache only if no
    /// update happened in the key's shard between its read of the store and its fill; the lock
    /// makes check-and-fill atomic against the writer's update.
    generations: Vec<Mutex<u64>>,
    /// `cache_lookups_total{cache,result}` of readers' lookups, registered once.
    hits: metrics::Counter,
    misses: metrics::Counter,
}

impl<K, V> CommittedCache<K, V>
where
    K: Eq + Hash + Clone,
    V: Clone,
{
    /// A cache of at most `capacity` values (at least one), reported as `name`.
    pub fn new(name: &'static str, capacity: usize) -> Self {
        Self {
            cache: Cache::new(capacity.max(1)),
            generations: (0..SHARDS).map(|_| Mutex::new(0)).collect(),
            hits: metrics::counter!("cache_lookups_total", "cache" => name, "result" => "hit"),
            misses: metrics::counter!("cache_lookups_total", "cache" => name, "result" => "miss"),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.cache.get(key)
    }

    /// The writer's update, after `value` is durable.
    pub fn put(&self, key: K, value: V) {
        let mut generation = self.lock(&key);
        *generation += 1;
        self.cache.insert(key, value);
    }

    /// The writer's fill with a value it read from the store (the writer never races itself).
    pub fn put_read(&self, key: K, value: V) {
        self.cache.insert(key, value);
    }

    /// A reader's read-through: the cached value, or `load()` from the store, cached unless the
    /// writer updated anything meanwhile (then `load()` may have read a row already replaced).
    pub fn get_or_load<E>(&self, key: &K, load: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        if let Some(value) = self.cache.get(key) {
            self.hits.increment(1);
            return Ok(value);
        }
        self.misses.increment(1);
        let before = *self.lock(key);
        let value = load()?;
        let generation = self.lock(key);
        if *generation == before {
            self.cache.insert(key.clone(), value.clone());
        }
        Ok(value)
    }

    fn lock(&self, key: &K) -> std::sync::MutexGuard<'_, u64> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let shard = hasher.finish() as usize % SHARDS;
        // The guarded value is a counter that is never left half-updated.
        self.generations[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fill_that_raced_a_writer_update_is_not_cached() {
        let cache: CommittedCache<&str, u32> = CommittedCache::new("test", 8);
        // The reader loads version 1 while the writer commits version 2.
        let loaded = cache.get_or_load(&"k", || {
            cache.put("k", 2);
            Ok::<_, ()>(1)
        });
        assert_eq!(loaded, Ok(1));
        assert_eq!(cache.get(&"k"), Some(2), "the writer's newer value stays");
    }

    #[test]
    fn a_quiet_fill_is_cached_and_bounded() {
        let cache: CommittedCache<u32, u32> = CommittedCache::new("test", 4);
        assert_eq!(cache.get_or_load(&1, || Ok::<_, ()>(10)), Ok(10));
        assert_eq!(
            cache.get_or_load(&1, || Err(())),
            Ok(10),
            "served from the cache"
        );
        for k in 0..100 {
            cache.put(k, k);
        }
        assert!((0..100).filter(|k| cache.get(k).is_some()).count() <= 8);
    }
}
