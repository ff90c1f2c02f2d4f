//! Which partitions one consumer takes, so several consumers split a topic.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// The partitions a consumer reads.
///
/// ```
/// use pulse_io::consumer::PartitionSelection;
/// let all = [0, 1, 2, 3, 4];
/// assert_eq!("all".parse::<PartitionSelection>().unwrap().select(&all).unwrap(), vec![0, 1, 2, 3, 4]);
/// assert_eq!("0,2".parse::<PartitionSelection>().unwrap().select(&all).unwrap(), vec![0, 2]);
/// // Instance 1 of 2 takes every partition p with p % 2 == 1.
/// assert_eq!("1/2".parse::<PartitionSelection>().unwrap().select(&all).unwrap(), vec![1, 3]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PartitionSelection {
    /// Every partition of the topic.
    #[default]
    All,
    /// These partitions.
    List(BTreeSet<i32>),
    /// Instance `index` of `count` consumers: partitions `p` with
    /// `p % count == index`.
    Instance {
        /// 0-based instance number.
        index: u32,
        /// Number of instances.
        count: u32,
    },
}

/// A selection that does not parse or does not fit the topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectionError {
    /// Not `all`, a list like `0,2` or an instance like `1/3`.
    #[error("invalid partition selection {0:?}: use a list like 0,2 or an instance like 1/3")]
    Syntax(String),
    /// An instance `I/N` with `I` not below `N`.
    #[error("there is no instance {index}/{count}: I/N counts I from 0 to N-1, e.g. 0/{count}")]
    NoSuchInstance {
        /// `I`.
        index: u32,
        /// `N`.
        count: u32,
    },
    /// A listed partition is not in the topic.
    #[error("partition {partition} does not exist (the topic has {available:?})")]
    NoSuchPartition {
        /// The partition asked for.
        partition: i32,
        /// The topic's partitions.
        available: Vec<i32>,
    },
    /// The selection matches no partition.
    #[error("{0} selects no partition of a topic with {1} partitions")]
    Empty(String, usize),
}

impl PartitionSelection {
    /// The selected partitions among `available`, sorted.
    pub fn select(&self, available: &[i32]) -> Result<Vec<i32>, SelectionError> {
        let chosen: Vec<i32> = match self {
            PartitionSelection::All => available.to_vec(),
            PartitionSelection::List(list) => {
                if let Some(p) = list.iter().find(|p| !available.contains(p)) {
                    return Err(SelectionError::NoSuchPartition {
                        partition: *p,
                        available: available.to_vec(),
                    });
                }
                list.iter().copied().collect()
            }
            PartitionSelection::Instance { .. } => available
                .iter()
                .copied()
                .filter(|p| self.includes(*p))
                .collect(),
        };
        if chosen.is_empty() {
            return Err(SelectionError::Empty(self.to_string(), available.len()));
        }
        let mut chosen = chosen;
        chosen.sort_unstable();
        Ok(chosen)
    }
}

impl PartitionSelection {
    /// Whether `partition` is one this selection takes, for partitions a
    /// topic gains while a consumer runs: `all` and instances take their
    /// share of them, a list only what it names.
    pub fn includes(&self, partition: i32) -> bool {
        match self {
            PartitionSelection::All => true,
            PartitionSelection::List(list) => list.contains(&partition),
            PartitionSelection::Instance { index, count } => {
                partition.rem_euclid(*count as i32) == *index as i32
            }
        }
    }
}

impl FromStr for PartitionSelection {
    type Err = SelectionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || SelectionError::Syntax(s.to_owned());
        let t = s.trim();
        if t.eq_ignore_ascii_case("all") {
            return Ok(PartitionSelection::All);
        }
        if let Some((index, count)) = t.split_once('/') {
            let index: u32 = index.trim().parse().map_err(|_| err())?;
            let count: u32 = count.trim().parse().map_err(|_| err())?;
            if count == 0 || count > i32::MAX as u32 {
                return Err(err());
            }
            if index >= count {
                return Err(SelectionError::NoSuchInstance { index, count });
            }
            return Ok(PartitionSelection::Instance { index, count });
        }
        let list = t
            .split(',')
            .map(|p| p.trim().parse::<i32>().ok().filter(|p| *p >= 0))
            .collect::<Option<BTreeSet<i32>>>()
            .ok_or_else(err)?;
        Ok(PartitionSelection::List(list))
    }
}

impl fmt::Display for PartitionSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionSelection::All => f.write_str("all"),
            PartitionSelection::List(list) => {
                let parts: Vec<String> = list.iter().map(i32::to_string).collect();
                f.write_str(&parts.join(","))
            }
            PartitionSelection::Instance { index, count } => write!(f, "{index}/{count}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            " 2, 0 ".parse::<PartitionSelection>().unwrap(),
            PartitionSelection::List([0, 2].into())
        );
        assert_eq!(
            "0/3".parse::<PartitionSelection>().unwrap(),
            PartitionSelection::Instance { index: 0, count: 3 }
        );
        for bad in ["", "a", "1,,2", "-1", "3/3", "1/0", "1/x"] {
            assert!(bad.parse::<PartitionSelection>().is_err(), "{bad}");
        }
        assert_eq!(
            "3/3".parse::<PartitionSelection>().unwrap_err().to_string(),
            "there is no instance 3/3: I/N counts I from 0 to N-1, e.g. 0/3"
        );
    }

    #[test]
    fn instances_split_partitions_exactly_once() {
        let available: Vec<i32> = (0..7).collect();
        let mut seen = Vec::new();
        for index in 0..3 {
            seen.extend(
                PartitionSelection::Instance { index, count: 3 }
                    .select(&available)
                    .unwrap(),
            );
        }
        seen.sort_unstable();
        assert_eq!(seen, available);
    }

    #[test]
    fn new_partitions_go_to_the_instance_select_would_give_them() {
        let grown: Vec<i32> = (0..9).collect();
        for count in 1..4 {
            for index in 0..count {
                let selection = PartitionSelection::Instance { index, count };
                let chosen = selection.select(&grown).unwrap();
                let included: Vec<i32> = grown
                    .iter()
                    .copied()
                    .filter(|p| selection.includes(*p))
                    .collect();
                assert_eq!(chosen, included);
            }
        }
        assert!(PartitionSelection::All.includes(7));
        let list: PartitionSelection = "0,2".parse().unwrap();
        assert!(list.includes(2) && !list.includes(3));
    }

    #[test]
    fn selections_must_fit_the_topic() {
        let list: PartitionSelection = "0,5".parse().unwrap();
        assert!(matches!(
            list.select(&[0, 1, 2]),
            Err(SelectionError::NoSuchPartition { partition: 5, .. })
        ));
        let instance: PartitionSelection = "3/4".parse().unwrap();
        assert!(matches!(
            instance.select(&[0, 1, 2]),
            Err(SelectionError::Empty(..))
        ));
    }
}
