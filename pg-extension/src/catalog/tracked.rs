//! Rows of `vset.tracked`: how one table is tracked.

use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::error::VsetError;

/// `set`: capture payloads; `invalidate`: capture only `del` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Set,
    Invalidate,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode, VsetError> {
        match s {
            "set" => Ok(Mode::Set),
            "invalidate" => Ok(Mode::Invalidate),
            other => Err(VsetError::BadMode(other.to_string())),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Set => "set",
            Mode::Invalidate => "invalidate",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tracked {
    pub key_template: String,
    /// Placeholder columns, in template order.
    pub key_columns: Vec<String>,
    /// Payload columns; `None` = every column.
    pub columns: Option<Vec<String>>,
    pub mode: Mode,
    pub channel: String,
}

impl Tracked {
    pub fn load(client: &SpiClient<'_>, table: pg_sys::Oid) -> Result<Option<Tracked>, VsetError> {
        let row = client
            .select(
                "SELECT key_template, key_columns, columns, mode, channel
                   FROM vset.tracked WHERE tbl = $1",
                Some(1),
                &[table.into()],
            )?
            .first();
        if row.is_empty() {
            return Ok(None);
        }
        Ok(Some(Tracked {
            key_template: row.get::<String>(1)?.unwrap_or_default(),
            key_columns: row.get::<Vec<String>>(2)?.unwrap_or_default(),
            columns: row.get::<Vec<String>>(3)?,
            mode: Mode::parse(&row.get::<String>(4)?.unwrap_or_default())?,
            channel: row.get::<String>(5)?.unwrap_or_default(),
        }))
    }

    pub fn insert(&self, client: &mut SpiClient<'_>, table: pg_sys::Oid) -> Result<(), VsetError> {
        client.update(
            "INSERT INTO vset.tracked (tbl, key_template, key_columns, columns, mode, channel)
             VALUES ($1, $2, $3, $4, $5, $6)",
            None,
            &[
                table.into(),
                self.key_template.clone().into(),
                self.key_columns.clone().into(),
                self.columns.clone().into(),
                self.mode.as_str().into(),
                self.channel.clone().into(),
            ],
        )?;
        Ok(())
    }

    pub fn delete(client: &mut SpiClient<'_>, table: pg_sys::Oid) -> Result<(), VsetError> {
        client.update(
            "DELETE FROM vset.tracked WHERE tbl = $1",
            None,
            &[table.into()],
        )?;
        Ok(())
    }

    /// True when `other` renders the same keys and payloads, so re-tracking with it
    /// leaves every cached entry valid (a new mode or channel changes neither).
    pub fn same_cache_entries(&self, other: &Tracked) -> bool {
        self.key_template == other.key_template && self.columns == other.columns
    }

    /// The trigger's arguments: template, mode, channel, then the payload columns
    /// (none = every column).
    pub fn trigger_args(&self) -> Vec<String> {
        let mut args = vec![
            self.key_template.clone(),
            self.mode.as_str().to_string(),
            self.channel.clone(),
        ];
        if let Some(cols) = &self.columns {
            args.extend(cols.iter().cloned());
        }
        args
    }
}
