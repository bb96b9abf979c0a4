//! Schedule grammar of the `cron` and `interval` triggers (spec 07 §10.1–§10.3).
//!
//! This module only parses and computes; it never reads the clock and never waits. The server asks
//! [`CronSchedule::next_after`] for the next fire instant on the wall clock and does the waiting on
//! a monotonic clock itself (§10.3).
//!
//! A cron expression becomes one bit set per field. [`CronSchedule::next_after`] walks local civil
//! time from the coarsest field to the finest (year, month, day, hour, minute, second), jumping
//! straight to the next value present in each set and resetting the finer fields. A search
//! therefore costs a few steps per month, even for a schedule that never fires, and ends at the
//! top of the year field (2099). Each civil match is then placed in the time zone: a civil time
//! that falls in a DST gap is skipped, and one that occurs twice (DST overlap) fires only at its
//! first occurrence.

use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone, TimeZoneDatabase};

/// The first year a 7-field schedule may name.
const FIRST_YEAR: i16 = 1970;

/// The last year a 7-field schedule may name, and the year after which every search stops.
const LAST_YEAR: i16 = 2099;

/// Month names accepted in the month field, `JAN` = 1.
const MONTH_NAMES: &[&str] = &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];

/// Day names accepted in the day-of-week field, in week order from Sunday.
const DAY_NAMES: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Why a schedule, an interval or a time zone was rejected.
///
/// Its `Display` is one line that quotes the rejected text and names the field or item at
/// fault, e.g. ``cron `61 * * * *`: minute value 61 is out of range 0-59``. The validator
/// reports it under the code `trigger_bad_schedule`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ScheduleError {
    /// The whole human-readable reason, already prefixed with what was being parsed.
    message: String,
}

impl ScheduleError {
    /// An error about the cron expression `expression`.
    fn cron(expression: &str, detail: &str) -> Self {
        Self { message: format!("cron `{}`: {detail}", shown(expression)) }
    }

    /// An error about the interval `every`.
    fn interval(every: &str, detail: &str) -> Self {
        Self { message: format!("interval `{}`: {detail}", shown(every)) }
    }

    /// An error about the time zone name `name`.
    fn time_zone(name: &str, detail: &str) -> Self {
        Self { message: format!("time zone `{}`: {detail}", shown(name)) }
    }
}

/// Text from the user made safe to quote in a one-line message.
///
/// Control characters, line breaks and bidirectional overrides are escaped so the message stays
/// on one line and reads as written; very long input is cut short.
fn shown(text: &str) -> String {
    const LIMIT: usize = 64;
    let mut out = String::new();
    for (count, character) in text.chars().enumerate() {
        if count == LIMIT {
            out.push('…');
            break;
        }
        let bidirectional_control = matches!(
            character,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        );
        let invisible_or_breaking = character.is_control() || (character.is_whitespace() && character != ' ');
        if bidirectional_control || invisible_or_breaking {
            out.extend(character.escape_unicode());
        } else {
            out.push(character);
        }
    }
    out
}

/// A parsed cron schedule per spec 07 §10.1: the 5-field standard form, the 6- and 7-field
/// agentd 1.3 forms with seconds first (and a year last), and the `@` shorthands.
///
/// Obtain one with [`CronSchedule::parse`]; ask for fire instants with
/// [`CronSchedule::next_after`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    /// Seconds 0–59 at which the schedule fires.
    seconds: ValueSet,
    /// Minutes 0–59.
    minutes: ValueSet,
    /// Hours 0–23.
    hours: ValueSet,
    /// Days of the month 1–31.
    days_of_month: ValueSet,
    /// Months 1–12.
    months: ValueSet,
    /// Days of the week, normalised to 0 = Sunday … 6 = Saturday whatever the form's numbering.
    days_of_week: ValueSet,
    /// Years as offsets from [`FIRST_YEAR`]; `None` when the form has no year field.
    years: Option<ValueSet>,
    /// How the day-of-month and day-of-week sets combine.
    day_rule: DayRule,
}

/// How the day-of-month and day-of-week fields combine into "this day matches".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayRule {
    /// The day matches if it is in either set: 5-field form with both fields restricted.
    Either,
    /// The day must be in both sets: every other case (an unrestricted field is a full set).
    Both,
}

/// The two field layouts, which differ in day-of-week numbering and day matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `minute hour day-of-month month day-of-week`, day-of-week 0–7 with 0 and 7 = Sunday.
    Standard,
    /// agentd 1.3: seconds first, optional year last, day-of-week 1–7 with 1 = Sunday.
    WithSeconds,
}

impl CronSchedule {
    /// Parses a cron expression.
    ///
    /// Fields are separated by one or more spaces (leading and trailing spaces are ignored; tabs
    /// and other whitespace are rejected). Five fields are the standard form (seconds = 0); six
    /// fields put seconds first; seven fields add a year (1970–2099) last. A lone `@yearly`,
    /// `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight` or `@hourly` (any case) is also
    /// accepted.
    ///
    /// # Errors
    ///
    /// Every other text, including the empty string, is a [`ScheduleError`] that names the
    /// offending field and item.
    pub fn parse(expression: &str) -> Result<CronSchedule, ScheduleError> {
        if let Some(other) = expression.chars().find(|c| c.is_whitespace() && *c != ' ') {
            let detail = format!("fields must be separated by spaces; found `{}`", other.escape_unicode());
            return Err(ScheduleError::cron(expression, &detail));
        }
        let fields: Vec<&str> = expression.split(' ').filter(|field| !field.is_empty()).collect();
        let result = match fields.as_slice() {
            [] => Err("the schedule is empty".to_owned()),
            [shorthand] if shorthand.starts_with('@') => Self::shorthand(shorthand),
            [first, ..] if first.starts_with('@') => Err(format!("the shorthand `{}` must stand alone", shown(first))),
            [minute, hour, day_of_month, month, day_of_week] => {
                Self::from_fields(Form::Standard, "0", minute, hour, day_of_month, month, day_of_week, None)
            }
            [second, minute, hour, day_of_month, month, day_of_week] => {
                Self::from_fields(Form::WithSeconds, second, minute, hour, day_of_month, month, day_of_week, None)
            }
            [second, minute, hour, day_of_month, month, day_of_week, year] => {
                Self::from_fields(Form::WithSeconds, second, minute, hour, day_of_month, month, day_of_week, Some(year))
            }
            other => Err(format!(
                "expected 5, 6 or 7 fields separated by spaces, or an @shorthand; found {} fields",
                other.len()
            )),
        };
        result.map_err(|detail| ScheduleError::cron(expression, &detail))
    }

    /// Expands an `@` shorthand into the 6-field form it stands for.
    fn shorthand(text: &str) -> Result<CronSchedule, String> {
        let fields: [&str; 6] = match text.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => ["0", "0", "0", "1", "1", "?"],
            "@monthly" => ["0", "0", "0", "1", "*", "?"],
            "@weekly" => ["0", "0", "0", "?", "*", "SUN"],
            "@daily" | "@midnight" => ["0", "0", "0", "*", "*", "?"],
            "@hourly" => ["0", "0", "*", "*", "*", "?"],
            _ => {
                return Err(format!(
                    "unknown shorthand `{}`; expected @yearly, @annually, @monthly, @weekly, \
                     @daily, @midnight or @hourly",
                    shown(text)
                ));
            }
        };
        let [second, minute, hour, day_of_month, month, day_of_week] = fields;
        Self::from_fields(Form::WithSeconds, second, minute, hour, day_of_month, month, day_of_week, None)
    }

    /// Builds a schedule from its field texts, the first failing field giving the error detail.
    #[allow(clippy::too_many_arguments, reason = "one argument per cron field reads best")]
    fn from_fields(
        form: Form,
        second: &str,
        minute: &str,
        hour: &str,
        day_of_month: &str,
        month: &str,
        day_of_week: &str,
        year: Option<&str>,
    ) -> Result<CronSchedule, String> {
        let seconds = parse_field(second, &SECOND)?;
        let minutes = parse_field(minute, &MINUTE)?;
        let hours = parse_field(hour, &HOUR)?;
        let days_of_month = parse_field(day_of_month, &DAY_OF_MONTH)?;
        let months = parse_field(month, &MONTH)?;
        let (day_of_week_rule, sunday) = match form {
            Form::Standard => (&DAY_OF_WEEK_STANDARD, 0),
            Form::WithSeconds => (&DAY_OF_WEEK_WITH_SECONDS, 1),
        };
        let parsed_days_of_week = parse_field(day_of_week, day_of_week_rule)?;
        // Normalise both numberings to 0 = Sunday; in the standard form 7 is Sunday again.
        let mut days_of_week = ValueSet::default();
        for value in day_of_week_rule.min..=day_of_week_rule.max {
            if parsed_days_of_week.values.contains(value) {
                days_of_week.insert((value - sunday) % 7);
            }
        }
        let years = match year {
            Some(text) => Some(parse_field(text, &YEAR)?.values),
            None => None,
        };
        let day_rule = if form == Form::Standard && days_of_month.restricted && parsed_days_of_week.restricted {
            DayRule::Either
        } else {
            DayRule::Both
        };
        Ok(CronSchedule {
            seconds: seconds.values,
            minutes: minutes.values,
            hours: hours.values,
            days_of_month: days_of_month.values,
            months: months.values,
            days_of_week,
            years,
            day_rule,
        })
    }

    /// The first instant strictly after `after` at which the schedule fires, evaluated on the
    /// wall clock of `tz`.
    ///
    /// A matching local time that does not exist (DST gap) is skipped; one that occurs twice
    /// (DST overlap) fires once, at its first occurrence. Returns `None` when no instant up to
    /// the end of 2099 matches (a past year, or a date such as 30 February that never occurs).
    #[must_use]
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        // Sub-second parts are dropped, so the first candidate is the next whole local second.
        let mut from = Civil::from_datetime(tz.to_datetime(after)).next_second();
        loop {
            let candidate = self.first_match_from(from)?;
            // A civil time always comes from a valid one, so this conversion cannot fail; if it
            // ever did, moving on is safer than stopping the trigger.
            if let Some(datetime) = candidate.to_datetime() {
                let offset = match tz.to_ambiguous_timestamp(datetime).offset() {
                    AmbiguousOffset::Unambiguous { offset } => Some(offset),
                    // In an overlap the offset in force before the transition gives the first
                    // occurrence; a second occurrence never fires.
                    AmbiguousOffset::Fold { before, .. } => Some(before),
                    AmbiguousOffset::Gap { .. } => None,
                };
                // A candidate can resolve to an instant at or before `after` only when `after`
                // lies in the second pass of an overlap: that local time already fired.
                if let Some(offset) = offset
                    && let Ok(instant) = offset.to_timestamp(datetime)
                    && instant > after
                {
                    return Some(instant);
                }
            }
            from = candidate.next_second();
        }
    }

    /// The first civil time at or after `from` that matches every field, or `None` once the
    /// search passes [`LAST_YEAR`].
    ///
    /// Every step either returns or moves `from` strictly forward, and the year check bounds the
    /// walk, so the loop ends.
    fn first_match_from(&self, mut from: Civil) -> Option<Civil> {
        loop {
            if from.year > LAST_YEAR {
                return None;
            }
            if let Some(years) = &self.years {
                // Years before the first representable one search from the first.
                let offset = u32::try_from(from.year - FIRST_YEAR).unwrap_or(0);
                let next = years.first_at_or_after(offset)?;
                let year = FIRST_YEAR.checked_add(i16::try_from(next).ok()?)?;
                if year != from.year {
                    from = Civil::start_of_year(year);
                    continue;
                }
            }
            match self.months.first_at_or_after(u32::from(from.month)) {
                Some(month) if month == u32::from(from.month) => {}
                Some(month) => {
                    from = Civil::start_of_month(from.year, u8::try_from(month).ok()?);
                    continue;
                }
                None => {
                    from = Civil::start_of_year(from.year + 1);
                    continue;
                }
            }
            if !self.day_matches(from) {
                from = match self.day_rule {
                    // Only days in the day-of-month set can match: jump to the next one.
                    DayRule::Both => match self.days_of_month.first_at_or_after(u32::from(from.day) + 1) {
                        Some(day) if day <= u32::from(days_in_month(from.year, from.month)) => {
                            Civil::start_of_day(from.year, from.month, u8::try_from(day).ok()?)
                        }
                        _ => from.start_of_next_month(),
                    },
                    DayRule::Either => from.start_of_next_day(),
                };
                continue;
            }
            match self.hours.first_at_or_after(u32::from(from.hour)) {
                Some(hour) if hour == u32::from(from.hour) => {}
                Some(hour) => {
                    from = Civil { hour: u8::try_from(hour).ok()?, minute: 0, second: 0, ..from };
                    continue;
                }
                None => {
                    from = from.start_of_next_day();
                    continue;
                }
            }
            match self.minutes.first_at_or_after(u32::from(from.minute)) {
                Some(minute) if minute == u32::from(from.minute) => {}
                Some(minute) => {
                    from = Civil { minute: u8::try_from(minute).ok()?, second: 0, ..from };
                    continue;
                }
                None => {
                    from = from.start_of_next_hour();
                    continue;
                }
            }
            match self.seconds.first_at_or_after(u32::from(from.second)) {
                Some(second) if second == u32::from(from.second) => return Some(from),
                Some(second) => {
                    return Some(Civil { second: u8::try_from(second).ok()?, ..from });
                }
                None => from = from.start_of_next_minute(),
            }
        }
    }

    /// Whether the date of `at` passes the day-of-month and day-of-week fields.
    fn day_matches(&self, at: Civil) -> bool {
        let by_day_of_month = self.days_of_month.contains(u32::from(at.day));
        let by_day_of_week = at.weekday_from_sunday().is_some_and(|weekday| self.days_of_week.contains(weekday));
        match self.day_rule {
            DayRule::Either => by_day_of_month || by_day_of_week,
            DayRule::Both => by_day_of_month && by_day_of_week,
        }
    }
}

/// A set of small numbers (0–191), one bit each; big enough for every field, years being stored
/// as offsets from [`FIRST_YEAR`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ValueSet {
    /// Bit `n % 64` of word `n / 64` is set when `n` is in the set.
    words: [u64; 3],
}

impl ValueSet {
    /// Adds `value`; values beyond the capacity are ignored (field ranges keep them out).
    fn insert(&mut self, value: u32) {
        if let Some(word) = self.words.get_mut((value / 64) as usize) {
            *word |= 1 << (value % 64);
        }
    }

    /// Whether `value` is in the set.
    fn contains(&self, value: u32) -> bool {
        self.words.get((value / 64) as usize).is_some_and(|word| word & (1 << (value % 64)) != 0)
    }

    /// The smallest member that is at least `value`.
    fn first_at_or_after(&self, value: u32) -> Option<u32> {
        let mut index = (value / 64) as usize;
        let mut word = self.words.get(index)? & (u64::MAX << (value % 64));
        loop {
            if word != 0 {
                return u32::try_from(index * 64).ok().map(|base| base + word.trailing_zeros());
            }
            index += 1;
            word = *self.words.get(index)?;
        }
    }
}

/// The grammar of one cron field.
struct FieldRule {
    /// The field's name as the user knows it, used in messages.
    name: &'static str,
    /// The smallest value the field accepts; also the start of `*`.
    min: u32,
    /// The largest value the field accepts; also the end of `*` and of `value/step`.
    max: u32,
    /// Names accepted in place of numbers, case-insensitively, in numeric order.
    names: &'static [&'static str],
    /// The number the first name stands for.
    first_name_value: u32,
    /// Whether a lone `?` is accepted as a synonym of `*`.
    question_mark: bool,
    /// Subtracted from a value before it goes into the set (the year field stores offsets).
    set_offset: u32,
}

/// The second field (6/7-field forms).
const SECOND: FieldRule =
    FieldRule { name: "second", min: 0, max: 59, names: &[], first_name_value: 0, question_mark: false, set_offset: 0 };

/// The minute field.
const MINUTE: FieldRule = FieldRule { name: "minute", ..SECOND };

/// The hour field.
const HOUR: FieldRule = FieldRule { name: "hour", max: 23, ..SECOND };

/// The day-of-month field; `?` is accepted in every form.
const DAY_OF_MONTH: FieldRule = FieldRule { name: "day-of-month", min: 1, max: 31, question_mark: true, ..SECOND };

/// The month field, `JAN`–`DEC`.
const MONTH: FieldRule =
    FieldRule { name: "month", min: 1, max: 12, names: MONTH_NAMES, first_name_value: 1, ..SECOND };

/// The day-of-week field of the standard 5-field form: 0–7, 0 and 7 = Sunday; no `?`.
const DAY_OF_WEEK_STANDARD: FieldRule =
    FieldRule { name: "day-of-week", min: 0, max: 7, names: DAY_NAMES, first_name_value: 0, ..SECOND };

/// The day-of-week field of the 6/7-field forms: 1–7, 1 = Sunday (agentd 1.3); `?` accepted.
const DAY_OF_WEEK_WITH_SECONDS: FieldRule = FieldRule {
    name: "day-of-week",
    min: 1,
    max: 7,
    names: DAY_NAMES,
    first_name_value: 1,
    question_mark: true,
    set_offset: 0,
};

/// The year field of the 7-field form.
const YEAR: FieldRule =
    FieldRule { name: "year", min: FIRST_YEAR as u32, max: LAST_YEAR as u32, set_offset: FIRST_YEAR as u32, ..SECOND };

/// One field after parsing.
struct ParsedField {
    /// The matching values, each less the rule's `set_offset`.
    values: ValueSet,
    /// False when the field is `*` or `?` (or only repeats them): it matches everything and, for
    /// the day fields, does not count as a restriction.
    restricted: bool,
}

/// Parses one field: a lone `?` where allowed, or a comma list of items.
fn parse_field(text: &str, rule: &FieldRule) -> Result<ParsedField, String> {
    let name = rule.name;
    let mut values = ValueSet::default();
    if text == "?" {
        if !rule.question_mark {
            let hint = if rule.name == "day-of-week" {
                " in the 5-field form (use `*`)"
            } else {
                " (only day-of-month and, in the 6/7-field forms, day-of-week do)"
            };
            return Err(format!("{name} does not accept `?`{hint}"));
        }
        insert_range(&mut values, rule, rule.min, rule.max, 1);
        return Ok(ParsedField { values, restricted: false });
    }
    let mut restricted = false;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("{name} `{}` has an empty item (check the commas)", shown(text)));
        }
        if item.contains('?') {
            return Err(format!("{name} `{}`: `?` must be the whole field", shown(text)));
        }
        if item == "*" {
            insert_range(&mut values, rule, rule.min, rule.max, 1);
        } else {
            restricted = true;
            parse_item(item, rule, &mut values)?;
        }
    }
    Ok(ParsedField { values, restricted })
}

/// Parses one item (`*`, `value`, `a-b`, each optionally with `/step`) into `values`.
fn parse_item(item: &str, rule: &FieldRule, values: &mut ValueSet) -> Result<(), String> {
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => (base, Some(parse_step(step, item, rule)?)),
        None => (item, None),
    };
    let (start, end) = if base == "*" {
        (rule.min, rule.max)
    } else if let Some((start, end)) = base.split_once('-') {
        let start = parse_value(start, item, rule)?;
        let end = parse_value(end, item, rule)?;
        if end < start {
            return Err(format!("{} range `{}` ends before it starts", rule.name, shown(base)));
        }
        (start, end)
    } else {
        let value = parse_value(base, item, rule)?;
        // `value/step` runs from the value to the field maximum.
        (value, if step.is_some() { rule.max } else { value })
    };
    insert_range(values, rule, start, end, step.unwrap_or(1));
    Ok(())
}

/// Inserts `start, start + step, …` up to `end` (all within the field's range).
fn insert_range(values: &mut ValueSet, rule: &FieldRule, start: u32, end: u32, step: u32) {
    let mut value = start;
    while value <= end {
        values.insert(value - rule.set_offset);
        match value.checked_add(step) {
            Some(next) => value = next,
            None => break,
        }
    }
}

/// Parses a step: a whole number of at least 1.
fn parse_step(text: &str, item: &str, rule: &FieldRule) -> Result<u32, String> {
    let name = rule.name;
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!("{name} step in `{}` must be a whole number of at least 1", shown(item)));
    }
    match text.parse::<u32>() {
        Ok(0) => Err(format!("{name} step 0 in `{}` is invalid; steps start at 1", shown(item))),
        Ok(step) => Ok(step),
        Err(_) => Err(format!("{name} step `{}` is too large", shown(text))),
    }
}

/// Parses a value: decimal digits or, where the field has them, a name; checks the range.
fn parse_value(text: &str, item: &str, rule: &FieldRule) -> Result<u32, String> {
    let name = rule.name;
    let range = || format!("{}-{}", rule.min, rule.max);
    if text.is_empty() {
        return Err(format!("{name} item `{}` is missing a value", shown(item)));
    }
    if text.bytes().all(|byte| byte.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(value) if (rule.min..=rule.max).contains(&value) => Ok(value),
            Ok(value) => Err(format!("{name} value {value} is out of range {}", range())),
            Err(_) => Err(format!("{name} value {} is out of range {}", shown(text), range())),
        };
    }
    if rule.names.is_empty() {
        return Err(format!("{name} value `{}` is not a number", shown(text)));
    }
    let position = rule.names.iter().position(|known| known.eq_ignore_ascii_case(text));
    match position.and_then(|index| u32::try_from(index).ok()) {
        Some(index) => Ok(rule.first_name_value + index),
        None => Err(format!(
            "{name} value `{}` is neither a number nor a name ({}-{} or {}-{})",
            shown(text),
            rule.min,
            rule.max,
            rule.names.first().copied().unwrap_or_default(),
            rule.names.last().copied().unwrap_or_default()
        )),
    }
}

/// A local civil time to the second, the search position of [`CronSchedule::next_after`].
///
/// Fields are always a valid date and time; the constructors keep them so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Civil {
    /// Calendar year (jiff's range, -9999–9999).
    year: i16,
    /// Month 1–12.
    month: u8,
    /// Day of the month, 1 to the month's length.
    day: u8,
    /// Hour 0–23.
    hour: u8,
    /// Minute 0–59.
    minute: u8,
    /// Second 0–59.
    second: u8,
}

impl Civil {
    /// The civil time of a jiff datetime, sub-second part dropped.
    fn from_datetime(datetime: DateTime) -> Civil {
        // jiff guarantees these ranges, so the fallbacks are never used.
        let field = |value: i8| u8::try_from(value).unwrap_or(0);
        Civil {
            year: datetime.year(),
            month: field(datetime.month()),
            day: field(datetime.day()),
            hour: field(datetime.hour()),
            minute: field(datetime.minute()),
            second: field(datetime.second()),
        }
    }

    /// The same time as a jiff datetime.
    fn to_datetime(self) -> Option<DateTime> {
        let field = |value: u8| i8::try_from(value).ok();
        DateTime::new(
            self.year,
            field(self.month)?,
            field(self.day)?,
            field(self.hour)?,
            field(self.minute)?,
            field(self.second)?,
            0,
        )
        .ok()
    }

    /// The day of the week, 0 = Sunday.
    fn weekday_from_sunday(self) -> Option<u32> {
        let date = Date::new(self.year, i8::try_from(self.month).ok()?, i8::try_from(self.day).ok()?);
        let weekday = date.ok()?.weekday().to_sunday_zero_offset();
        u32::try_from(weekday).ok()
    }

    /// Midnight on 1 January of `year`.
    fn start_of_year(year: i16) -> Civil {
        Civil::start_of_day(year, 1, 1)
    }

    /// Midnight on the 1st of `month` (1–12) in `year`.
    fn start_of_month(year: i16, month: u8) -> Civil {
        Civil::start_of_day(year, month, 1)
    }

    /// Midnight starting the given day.
    fn start_of_day(year: i16, month: u8, day: u8) -> Civil {
        Civil { year, month, day, hour: 0, minute: 0, second: 0 }
    }

    /// Midnight on the 1st of the following month.
    fn start_of_next_month(self) -> Civil {
        if self.month >= 12 {
            Civil::start_of_year(self.year.saturating_add(1))
        } else {
            Civil::start_of_month(self.year, self.month + 1)
        }
    }

    /// Midnight starting the following day.
    fn start_of_next_day(self) -> Civil {
        if self.day >= days_in_month(self.year, self.month) {
            self.start_of_next_month()
        } else {
            Civil::start_of_day(self.year, self.month, self.day + 1)
        }
    }

    /// The start of the following hour.
    fn start_of_next_hour(self) -> Civil {
        if self.hour >= 23 {
            self.start_of_next_day()
        } else {
            Civil { hour: self.hour + 1, minute: 0, second: 0, ..self }
        }
    }

    /// The start of the following minute.
    fn start_of_next_minute(self) -> Civil {
        if self.minute >= 59 { self.start_of_next_hour() } else { Civil { minute: self.minute + 1, second: 0, ..self } }
    }

    /// One second later.
    fn next_second(self) -> Civil {
        if self.second >= 59 { self.start_of_next_minute() } else { Civil { second: self.second + 1, ..self } }
    }
}

/// The number of days in `month` (1–12) of `year` (proleptic Gregorian calendar).
fn days_in_month(year: i16, month: u8) -> u8 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses the `every` of an `interval` trigger (spec 07 §10.2): `<digits><unit>`.
///
/// Outer whitespace is trimmed. The unit is one of `s`, `sec`, `secs`, `m`, `min`, `mins`, `h`,
/// `hr`, `hrs`, `d`, `day`, `days` (lower case). Zero, fractions, signs, spaces between number and
/// unit, other units, and intervals whose length in milliseconds does not fit in a `u64` (the
/// payload's `every_ms`) are errors.
///
/// # Errors
///
/// A [`ScheduleError`] saying which of those rules `every` breaks.
pub fn parse_interval(every: &str) -> Result<Duration, ScheduleError> {
    let error = |detail: &str| ScheduleError::interval(every, detail);
    let text = every.trim();
    if text.is_empty() {
        return Err(error("the interval is empty; expected e.g. `30s`, `5m`, `1h` or `1d`"));
    }
    if text.starts_with(['+', '-']) {
        return Err(error("signs are not allowed; write a positive whole number and a unit"));
    }
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(error("expected a whole number followed by a unit, e.g. `30s`"));
    }
    let unit_seconds: u64 = match unit {
        "s" | "sec" | "secs" => 1,
        "m" | "min" | "mins" => 60,
        "h" | "hr" | "hrs" => 60 * 60,
        "d" | "day" | "days" => 24 * 60 * 60,
        "" => return Err(error("missing a unit (s, m, h or d)")),
        _ if unit.starts_with(['.', ',']) => {
            return Err(error("fractions are not allowed; use a smaller unit, e.g. `90s`"));
        }
        _ if unit.starts_with(char::is_whitespace) => {
            return Err(error("no space is allowed between the number and the unit"));
        }
        _ => {
            let detail = format!(
                "unknown unit `{}`; expected s, sec, secs, m, min, mins, h, hr, hrs, d, day \
                 or days",
                shown(unit)
            );
            return Err(error(&detail));
        }
    };
    let too_large = || error("the interval is too large");
    let count: u64 = digits.parse().map_err(|_| too_large())?;
    if count == 0 {
        return Err(error("the interval must be greater than zero"));
    }
    let seconds = count.checked_mul(unit_seconds).ok_or_else(too_large)?;
    // The payload carries `every_ms` as a u64, so the interval must fit in it.
    seconds.checked_mul(1000).ok_or_else(too_large)?;
    Ok(Duration::from_secs(seconds))
}

/// Looks up an IANA time zone name (e.g. `Europe/Berlin`, `UTC`) in jiff's bundled time zone
/// database, so the answer does not depend on the host's zoneinfo files.
///
/// The lookup ignores ASCII case.
///
/// # Errors
///
/// A [`ScheduleError`] for an unknown name, the empty name and jiff's placeholder `Etc/Unknown`.
pub fn parse_timezone(name: &str) -> Result<TimeZone, ScheduleError> {
    if name.is_empty() {
        return Err(ScheduleError::time_zone(name, "the name is empty; expected e.g. `Europe/Berlin`"));
    }
    match TimeZoneDatabase::bundled().get(name) {
        Ok(zone) if !zone.is_unknown() => Ok(zone),
        _ => Err(ScheduleError::time_zone(name, "unknown IANA time zone name; expected e.g. `Europe/Berlin` or `UTC`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Zoned;
    use jiff::civil::Weekday;
    use proptest::prelude::*;

    fn zone(name: &str) -> TimeZone {
        parse_timezone(name).expect("known zone")
    }

    fn instant(text: &str) -> Timestamp {
        text.parse::<Zoned>().expect("valid zoned datetime").timestamp()
    }

    fn schedule(expression: &str) -> CronSchedule {
        CronSchedule::parse(expression).unwrap_or_else(|error| panic!("`{expression}` should parse: {error}"))
    }

    /// The next `count` fires after `from`, as zoned datetimes in `tz`.
    fn fires(expression: &str, from: &str, tz: &TimeZone, count: usize) -> Vec<Zoned> {
        let schedule = schedule(expression);
        let mut after = instant(from);
        let mut out = Vec::new();
        for _ in 0..count {
            let next = schedule.next_after(after, tz).expect("a next fire");
            assert!(next > after, "`{expression}`: {next} is not after {after}");
            out.push(next.to_zoned(tz.clone()));
            after = next;
        }
        out
    }

    /// The same fires written as local datetime and offset, e.g. `2024-05-20T08:00:00+02`.
    fn fire_texts(expression: &str, from: &str, tz: &TimeZone, count: usize) -> Vec<String> {
        fires(expression, from, tz, count).iter().map(|fire| format!("{}{}", fire.datetime(), fire.offset())).collect()
    }

    fn error(expression: &str) -> String {
        match CronSchedule::parse(expression) {
            Ok(parsed) => panic!("`{expression}` should be rejected, parsed as {parsed:?}"),
            Err(error) => error.to_string(),
        }
    }

    // ---- §10.1 "Fires" table -------------------------------------------------------------

    #[test]
    fn table_standard_monday_eight() {
        let utc = TimeZone::UTC;
        let got = fires("0 8 * * 1", "2024-05-15T12:00:00+00:00[UTC]", &utc, 6);
        for fire in &got {
            assert_eq!(fire.weekday(), Weekday::Monday);
            assert_eq!((fire.hour(), fire.minute(), fire.second(), fire.subsec_nanosecond()), (8, 0, 0, 0));
        }
        for pair in got.windows(2) {
            assert_eq!(pair[1].timestamp().as_second() - pair[0].timestamp().as_second(), 7 * 86_400);
        }
        assert_eq!(got[0].datetime().to_string(), "2024-05-20T08:00:00");
    }

    #[test]
    fn table_six_field_two_is_monday() {
        let berlin = zone("Europe/Berlin");
        let from = "2024-05-15T12:00:00+02:00[Europe/Berlin]";
        let got = fire_texts("0 0 8 * * 2", from, &berlin, 4);
        assert_eq!(
            got,
            ["2024-05-20T08:00:00+02", "2024-05-27T08:00:00+02", "2024-06-03T08:00:00+02", "2024-06-10T08:00:00+02",]
        );
        // Same instants as the standard-form row.
        assert_eq!(got, fire_texts("0 8 * * 1", from, &berlin, 4));
        assert_eq!(got, fire_texts("0 0 8 ? * MON", from, &berlin, 4));
    }

    #[test]
    fn table_every_fifteen_minutes() {
        let utc = TimeZone::UTC;
        let got = fires("*/15 * * * *", "2024-12-31T23:07:31.5+00:00[UTC]", &utc, 8);
        let minutes: Vec<i8> = got.iter().map(Zoned::minute).collect();
        assert_eq!(minutes, [15, 30, 45, 0, 15, 30, 45, 0]);
        assert!(got.iter().all(|fire| fire.second() == 0 && fire.subsec_nanosecond() == 0));
        assert_eq!(got[2].datetime().to_string(), "2024-12-31T23:45:00");
        assert_eq!(got[3].datetime().to_string(), "2025-01-01T00:00:00");
    }

    #[test]
    fn table_daily_two_thirty() {
        let new_york = zone("America/New_York");
        let got = fire_texts("0 30 2 * * *", "2024-02-27T02:30:00-05:00[America/New_York]", &new_york, 4);
        assert_eq!(
            got,
            ["2024-02-28T02:30:00-05", "2024-02-29T02:30:00-05", "2024-03-01T02:30:00-05", "2024-03-02T02:30:00-05",]
        );
    }

    #[test]
    fn table_standard_day_fields_are_either() {
        let utc = TimeZone::UTC;
        let got = fire_texts("0 9 1 * 1", "2024-04-25T00:00:00+00:00[UTC]", &utc, 8);
        assert_eq!(
            got,
            [
                "2024-04-29T09:00:00+00", // Monday
                "2024-05-01T09:00:00+00", // the 1st, a Wednesday
                "2024-05-06T09:00:00+00",
                "2024-05-13T09:00:00+00",
                "2024-05-20T09:00:00+00",
                "2024-05-27T09:00:00+00",
                "2024-06-01T09:00:00+00", // the 1st, a Saturday
                "2024-06-03T09:00:00+00",
            ]
        );
    }

    #[test]
    fn table_six_field_day_fields_are_both() {
        let utc = TimeZone::UTC;
        let got = fire_texts("0 0 9 1 * MON", "2023-12-15T00:00:00+00:00[UTC]", &utc, 5);
        assert_eq!(
            got,
            [
                "2024-01-01T09:00:00+00",
                "2024-04-01T09:00:00+00",
                "2024-07-01T09:00:00+00",
                "2025-09-01T09:00:00+00",
                "2025-12-01T09:00:00+00",
            ]
        );
        for fire in fires("0 0 9 1 * MON", "2023-12-15T00:00:00+00:00[UTC]", &utc, 12) {
            assert_eq!((fire.day(), fire.weekday()), (1, Weekday::Monday));
        }
    }

    // ---- Grammar: accepted forms ------------------------------------------------------------

    #[test]
    fn shorthands_expand_to_their_schedules() {
        let utc = TimeZone::UTC;
        let from = "2024-05-15T12:34:56+00:00[UTC]";
        let cases = [
            ("@yearly", "2025-01-01T00:00:00+00"),
            ("@annually", "2025-01-01T00:00:00+00"),
            ("@ANNUALLY", "2025-01-01T00:00:00+00"),
            ("@monthly", "2024-06-01T00:00:00+00"),
            ("@weekly", "2024-05-19T00:00:00+00"), // Sunday
            ("@daily", "2024-05-16T00:00:00+00"),
            ("@midnight", "2024-05-16T00:00:00+00"),
            ("@hourly", "2024-05-15T13:00:00+00"),
            ("  @hourly ", "2024-05-15T13:00:00+00"),
        ];
        for (expression, expected) in cases {
            assert_eq!(fire_texts(expression, from, &utc, 1), [expected], "{expression}");
        }
        assert_eq!(schedule("@weekly"), schedule("0 0 * * 0"));
        assert_eq!(schedule("@daily"), schedule("0 0 0 * * ?"));
    }

    #[test]
    fn lists_ranges_steps_and_names() {
        // Several spaces between fields, names in any case, value/step to the maximum.
        let a = schedule("0  0   9-17/4 * jan-Mar,dec  Mon-fri");
        let b = schedule("0 0 9,13,17 * 1,2,3,12 2,3,4,5,6");
        assert_eq!(a, b);
        assert_eq!(schedule("50/5 * * * *"), schedule("50,55 * * * *"));
        assert_eq!(schedule("0 0 20/2 * * ?"), schedule("0 0 20,22 * * ?"));
        assert_eq!(schedule("*/20 * * * *"), schedule("0,20,40 * * * *"));
        assert_eq!(schedule("0-59/60 * * * *"), schedule("0 * * * *"));
        assert_eq!(schedule("0 0 * * FRI/1"), schedule("0 0 * * 5,6,7"));
        // Leading zeros are plain decimal.
        assert_eq!(schedule("05 08 * * *"), schedule("5 8 * * *"));
    }

    #[test]
    fn day_of_week_numbering_per_form() {
        // Standard: 0 and 7 are Sunday, 1 Monday; 6/7-field: 1 Sunday, 7 Saturday.
        assert_eq!(schedule("0 0 * * 0"), schedule("0 0 * * 7"));
        assert_eq!(schedule("0 0 * * 0"), schedule("0 0 * * SUN"));
        assert_eq!(schedule("0 0 0 * * 1"), schedule("0 0 0 * * sun"));
        assert_eq!(schedule("0 0 0 * * 7"), schedule("0 0 0 * * SAT"));
        assert_eq!(schedule("0 0 0 * * 1-7"), schedule("0 0 0 * * *"));
        assert_eq!(schedule("0 0 * * 0-7"), schedule("0 0 * * *"));
        let saturday = fires("0 0 0 ? * 7", "2024-05-15T00:00:00+00:00[UTC]", &TimeZone::UTC, 3);
        assert!(saturday.iter().all(|fire| fire.weekday() == Weekday::Saturday));
        let sunday = fires("0 0 * * 7", "2024-05-15T00:00:00+00:00[UTC]", &TimeZone::UTC, 3);
        assert!(sunday.iter().all(|fire| fire.weekday() == Weekday::Sunday));
    }

    #[test]
    fn question_mark_means_any() {
        assert_eq!(schedule("0 0 ? * *"), schedule("0 0 * * *"));
        assert_eq!(schedule("0 0 0 ? * 2"), schedule("0 0 0 * * 2"));
        assert_eq!(schedule("0 0 0 1 * ?"), schedule("0 0 0 1 * *"));
    }

    #[test]
    fn standard_form_with_one_day_field_restricted_uses_only_that_field() {
        let utc = TimeZone::UTC;
        let from = "2024-05-15T00:00:00+00:00[UTC]";
        // Day-of-week `*`: only the 1st.
        assert_eq!(fire_texts("0 9 1 * *", from, &utc, 2), ["2024-06-01T09:00:00+00", "2024-07-01T09:00:00+00"]);
        // Day-of-month `?`: only Mondays.
        assert_eq!(fire_texts("0 9 ? * 1", from, &utc, 2), ["2024-05-20T09:00:00+00", "2024-05-27T09:00:00+00"]);
        // A stepped field is restricted (it is not `*`/`?`): odd days OR Mondays.
        assert_eq!(
            fire_texts("0 9 */2 * 1", "2024-05-17T10:00:00+00:00[UTC]", &utc, 3),
            ["2024-05-19T09:00:00+00", "2024-05-20T09:00:00+00", "2024-05-21T09:00:00+00"]
        );
    }

    #[test]
    fn seven_field_years() {
        let utc = TimeZone::UTC;
        let once = schedule("0 0 0 1 1 ? 2030");
        assert_eq!(
            once.next_after(instant("2024-05-15T00:00:00+00:00[UTC]"), &utc),
            Some(instant("2030-01-01T00:00:00+00:00[UTC]"))
        );
        assert_eq!(once.next_after(instant("2030-01-01T00:00:00+00:00[UTC]"), &utc), None);
        assert_eq!(schedule("0 0 0 1 1 ? 2020").next_after(instant("2024-01-01T00:00:00Z[UTC]"), &utc), None);
        assert_eq!(
            fire_texts("30 15 10 29 2 ? 2024-2099/4", "2024-03-01T00:00:00+00:00[UTC]", &utc, 2),
            ["2028-02-29T10:15:30+00", "2032-02-29T10:15:30+00"]
        );
        // Before 1970 the search starts at the first year in the field.
        assert_eq!(
            schedule("0 0 0 1 1 ? *").next_after(instant("1900-06-01T00:00:00+00:00[UTC]"), &utc),
            Some(instant("1970-01-01T00:00:00+00:00[UTC]"))
        );
        assert_eq!(
            schedule("0 0 0 1 1 ? 2099").next_after(instant("2098-06-01T00:00:00+00:00[UTC]"), &utc),
            Some(instant("2099-01-01T00:00:00+00:00[UTC]"))
        );
    }

    #[test]
    fn seconds_field_fires_within_the_minute() {
        let utc = TimeZone::UTC;
        let got = fire_texts("10-50/20 * * * * ?", "2024-05-15T12:00:30+00:00[UTC]", &utc, 4);
        assert_eq!(
            got,
            ["2024-05-15T12:00:50+00", "2024-05-15T12:01:10+00", "2024-05-15T12:01:30+00", "2024-05-15T12:01:50+00",]
        );
    }

    #[test]
    fn next_is_strictly_after_even_on_a_fire_instant() {
        let utc = TimeZone::UTC;
        let every_minute = schedule("* * * * *");
        let on_the_minute = instant("2024-05-15T12:00:00+00:00[UTC]");
        assert_eq!(every_minute.next_after(on_the_minute, &utc), Some(instant("2024-05-15T12:01:00+00:00[UTC]")));
        let just_before = instant("2024-05-15T11:59:59.999999999+00:00[UTC]");
        assert_eq!(every_minute.next_after(just_before, &utc), Some(on_the_minute));
        let just_after = instant("2024-05-15T12:00:00.000000001+00:00[UTC]");
        assert_eq!(every_minute.next_after(just_after, &utc), Some(instant("2024-05-15T12:01:00+00:00[UTC]")));
    }

    #[test]
    fn no_future_instant() {
        let utc = TimeZone::UTC;
        let from = instant("2024-05-15T00:00:00+00:00[UTC]");
        // Dates that never occur end the search at the year bound instead of looping.
        assert_eq!(schedule("0 0 30 2 *").next_after(from, &utc), None);
        assert_eq!(schedule("0 0 0 31 4,6,9,11 ?").next_after(from, &utc), None);
        // Leap days still occur.
        assert_eq!(schedule("0 0 29 2 *").next_after(from, &utc), Some(instant("2028-02-29T00:00:00+00:00[UTC]")));
        // Searches stop after 2099.
        assert_eq!(schedule("0 0 29 2 *").next_after(instant("2097-01-01T00:00:00Z[UTC]"), &utc), None);
        assert_eq!(schedule("* * * * *").next_after(instant("2099-12-31T23:59:00Z[UTC]"), &utc), None);
        assert_eq!(
            schedule("* * * * *").next_after(instant("2099-12-31T23:58:59Z[UTC]"), &utc),
            Some(instant("2099-12-31T23:59:00Z[UTC]"))
        );
    }

    #[test]
    fn extreme_instants_and_offsets_do_not_panic() {
        let zones = [
            TimeZone::UTC,
            zone("Europe/Berlin"),
            zone("Pacific/Kiritimati"),
            TimeZone::fixed(jiff::tz::Offset::MAX),
            TimeZone::fixed(jiff::tz::Offset::MIN),
        ];
        for tz in &zones {
            for expression in ["* * * * * *", "0 0 30 2 *", "0 0 0 1 1 ? 2099", "@yearly"] {
                let parsed = schedule(expression);
                assert_eq!(parsed.next_after(Timestamp::MAX, tz), None);
                if let Some(next) = parsed.next_after(Timestamp::MIN, tz) {
                    assert!(next > Timestamp::MIN);
                }
            }
        }
        assert!(schedule("* * * * *").next_after(Timestamp::MIN, &TimeZone::UTC).is_some());
    }

    // ---- Grammar: rejected forms ------------------------------------------------------------

    #[test]
    fn error_messages_name_the_field_and_item() {
        assert_eq!(error("0 61 * * *"), "cron `0 61 * * *`: hour value 61 is out of range 0-23");
        assert_eq!(error("61 0 * * *"), "cron `61 0 * * *`: minute value 61 is out of range 0-59");
        assert_eq!(error("0 0 0 0 * ?"), "cron `0 0 0 0 * ?`: day-of-month value 0 is out of range 1-31");
        assert_eq!(error("0 0 1 13 *"), "cron `0 0 1 13 *`: month value 13 is out of range 1-12");
        assert_eq!(error("0 0 * * 8"), "cron `0 0 * * 8`: day-of-week value 8 is out of range 0-7");
        assert_eq!(error("0 0 0 * * 0"), "cron `0 0 0 * * 0`: day-of-week value 0 is out of range 1-7");
        assert_eq!(error("60 0 0 * * ?"), "cron `60 0 0 * * ?`: second value 60 is out of range 0-59");
        assert_eq!(error("0 0 0 * * ? 1969"), "cron `0 0 0 * * ? 1969`: year value 1969 is out of range 1970-2099");
        assert_eq!(error("0 0 0 * * ? 2100"), "cron `0 0 0 * * ? 2100`: year value 2100 is out of range 1970-2099");
        assert_eq!(error("0 17-9 * * *"), "cron `0 17-9 * * *`: hour range `17-9` ends before it starts");
        assert_eq!(error("*/0 * * * *"), "cron `*/0 * * * *`: minute step 0 in `*/0` is invalid; steps start at 1");
        assert_eq!(
            error("0 0 * * FRI-MON"),
            "cron `0 0 * * FRI-MON`: day-of-week range `FRI-MON` ends before it starts"
        );
        assert_eq!(
            error("0 0 * FOO *"),
            "cron `0 0 * FOO *`: month value `FOO` is neither a number nor a name (1-12 or JAN-DEC)"
        );
        assert_eq!(error("0 MON * * *"), "cron `0 MON * * *`: hour value `MON` is not a number");
        assert_eq!(
            error("0 0 * *"),
            "cron `0 0 * *`: expected 5, 6 or 7 fields separated by spaces, or an @shorthand; found 4 fields"
        );
        assert_eq!(error(""), "cron ``: the schedule is empty");
        assert_eq!(error("   "), "cron `   `: the schedule is empty");
        assert_eq!(
            error("0 0 * * ?"),
            "cron `0 0 * * ?`: day-of-week does not accept `?` in the 5-field form (use `*`)"
        );
        assert_eq!(
            error("@reboot"),
            "cron `@reboot`: unknown shorthand `@reboot`; expected @yearly, @annually, @monthly, \
             @weekly, @daily, @midnight or @hourly"
        );
        assert_eq!(error("0 0\t* * *"), "cron `0 0\\u{9}* * *`: fields must be separated by spaces; found `\\u{9}`");
        assert_eq!(
            error("0 99999999999999999999 * * *"),
            "cron `0 99999999999999999999 * * *`: hour value 99999999999999999999 is out of range 0-23"
        );
    }

    #[test]
    fn rejects_malformed_schedules() {
        let rejected = [
            // Wrong field counts.
            "*",
            "* * * *",
            "* * * * * * * *",
            "0 0 0 0 0 0 0 0 0",
            // Garbage and malformed items.
            "hello",
            "a b c d e",
            "0 0 * * * extra text",
            "0,,5 * * * *",
            ",0 * * * *",
            "0, * * * *",
            "- * * * *",
            "-5 * * * *",
            "5- * * * *",
            "1-2-3 * * * *",
            "+5 * * * *",
            "*/ * * * *",
            "/5 * * * *",
            "*/5/2 * * * *",
            "*/-1 * * * *",
            "*/+1 * * * *",
            "*/1.5 * * * *",
            "1.5 * * * *",
            "** * * * *",
            "*-5 * * * *",
            "0 0 L * *",
            "0 0 * * 1#2",
            "0 0 1W * *",
            "0 0 * * MONDAY",
            "0 0 * JANUARY *",
            "0 0 * * MO",
            "0 0 ?/2 * *",
            "0 0 ?,1 * *",
            "? 0 * * *",
            "0 0 0 * ? *",
            "@every 5m",
            "@daily 0",
            "@",
            "@ daily",
            // Out of range and backwards.
            "0 0 32 * *",
            "0 0 * 0 *",
            "0 24 * * *",
            "0 0 0 * * 8",
            "0 0 0 * * ? 0",
            "0 0 0 * * ? 99",
            "0 0 0 * * ? 2099-2024",
            "0 0 0 * * ? 2024/0",
            "0 0 * DEC-JAN *",
            "0 0 * * 7-0",
            "0 0 * * SAT-SUN",
            "0 0 0 * * 99999999999999999999",
            "*/99999999999999999999 * * * *",
            // Other whitespace.
            "0\u{a0}0 * * *",
            "0 0 * * *\n",
            // Unicode garbage.
            "٠ ٠ * * *",
            "０ 0 * * *",
            "0 0 * * ＭＯＮ",
            "🙂 🙂 🙂 🙂 🙂",
            "0 0 * * MON\u{202e}",
            "\u{0} \u{0} \u{0} \u{0} \u{0}",
        ];
        for expression in rejected {
            let message = error(expression);
            assert!(message.starts_with("cron `"), "{message}");
            assert!(!message.contains('\n') && !message.contains('\r'), "not one line: {message:?}");
        }
    }

    #[test]
    fn long_or_unprintable_input_is_quoted_on_one_line() {
        let long = "9".repeat(500);
        let message = error(&long);
        assert!(message.chars().count() < 300, "{message}");
        assert!(message.contains('…'));
        let message = error("0 0 * *\u{2028}*");
        assert!(!message.contains('\u{2028}') && message.contains("\\u{2028}"), "{message}");
    }

    // ---- DST ----------------------------------------------------------------------------------

    #[test]
    fn berlin_gap_local_time_is_skipped() {
        // 2024-03-31: 02:00 CET jumps to 03:00 CEST, 02:30 does not exist that day.
        let berlin = zone("Europe/Berlin");
        assert_eq!(
            fire_texts("30 2 * * *", "2024-03-30T12:00:00+01:00[Europe/Berlin]", &berlin, 2),
            ["2024-04-01T02:30:00+02", "2024-04-02T02:30:00+02"]
        );
        assert_eq!(
            fire_texts("0 * * * *", "2024-03-31T00:30:00+01:00[Europe/Berlin]", &berlin, 3),
            ["2024-03-31T01:00:00+01", "2024-03-31T03:00:00+02", "2024-03-31T04:00:00+02"]
        );
    }

    #[test]
    fn berlin_overlap_fires_once_at_first_occurrence() {
        // 2024-10-27: 03:00 CEST falls back to 02:00 CET, 02:00-02:59 occurs twice.
        let berlin = zone("Europe/Berlin");
        assert_eq!(
            fire_texts("30 2 * * *", "2024-10-26T12:00:00+02:00[Europe/Berlin]", &berlin, 2),
            ["2024-10-27T02:30:00+02", "2024-10-28T02:30:00+01"]
        );
        assert_eq!(
            fire_texts("*/15 * * * *", "2024-10-27T01:50:00+02:00[Europe/Berlin]", &berlin, 6),
            [
                "2024-10-27T02:00:00+02",
                "2024-10-27T02:15:00+02",
                "2024-10-27T02:30:00+02",
                "2024-10-27T02:45:00+02",
                "2024-10-27T03:00:00+01",
                "2024-10-27T03:15:00+01",
            ]
        );
        // Asked from inside the second pass, the repeated local times have already fired.
        let second_pass = instant("2024-10-27T02:10:00+01:00[Europe/Berlin]");
        assert_eq!(
            schedule("*/15 * * * *").next_after(second_pass, &berlin),
            Some(instant("2024-10-27T03:00:00+01:00[Europe/Berlin]"))
        );
        assert_eq!(
            schedule("* * * * * *").next_after(second_pass, &berlin),
            Some(instant("2024-10-27T03:00:00+01:00[Europe/Berlin]"))
        );
    }

    #[test]
    fn new_york_gap_and_overlap() {
        let new_york = zone("America/New_York");
        // 2024-03-10: 02:00 EST jumps to 03:00 EDT.
        assert_eq!(
            fire_texts("30 2 * * *", "2024-03-09T12:00:00-05:00[America/New_York]", &new_york, 2),
            ["2024-03-11T02:30:00-04", "2024-03-12T02:30:00-04"]
        );
        // 2024-11-03: 02:00 EDT falls back to 01:00 EST.
        assert_eq!(
            fire_texts("30 1 * * *", "2024-11-02T12:00:00-04:00[America/New_York]", &new_york, 2),
            ["2024-11-03T01:30:00-04", "2024-11-04T01:30:00-05"]
        );
    }

    #[test]
    fn a_skipped_day_is_skipped() {
        // Samoa skipped 2011-12-30 entirely when it crossed the date line.
        let apia = zone("Pacific/Apia");
        assert_eq!(
            fire_texts("0 0 12 * * ?", "2011-12-29T13:00:00-10:00[Pacific/Apia]", &apia, 1),
            ["2011-12-31T12:00:00+14"]
        );
    }

    /// Checks `next_after` against a brute-force scan: an instant fires iff its local time
    /// matches every field and it is the first instant with that local time.
    fn assert_agrees_with_scan(expression: &str, tz: &TimeZone, from: &str, minutes: i64) {
        let parsed = schedule(expression);
        let start = instant(from).as_second();
        let mut expected = Vec::new();
        for minute in 1..=minutes {
            let at = Timestamp::from_second(start + minute * 60).expect("in range");
            let civil = Civil::from_datetime(tz.to_datetime(at));
            let matches = parsed.seconds.contains(0)
                && parsed.minutes.contains(u32::from(civil.minute))
                && parsed.hours.contains(u32::from(civil.hour))
                && parsed.months.contains(u32::from(civil.month))
                && parsed.day_matches(civil);
            let first = tz.to_ambiguous_timestamp(tz.to_datetime(at)).earlier().expect("resolves") == at;
            if matches && first {
                expected.push(at);
            }
        }
        let mut got = Vec::new();
        let mut after = Timestamp::from_second(start).expect("in range");
        let end = Timestamp::from_second(start + minutes * 60).expect("in range");
        while let Some(next) = parsed.next_after(after, tz) {
            if next > end {
                break;
            }
            got.push(next);
            after = next;
        }
        assert_eq!(got, expected, "{expression} in {tz:?} from {from}");
    }

    #[test]
    fn agrees_with_brute_force_scan_across_dst() {
        let windows = [
            ("Europe/Berlin", "2024-03-29T00:00:00+01:00[Europe/Berlin]"),
            ("Europe/Berlin", "2024-10-25T00:00:00+02:00[Europe/Berlin]"),
            ("America/New_York", "2024-03-08T00:00:00-05:00[America/New_York]"),
            ("America/New_York", "2024-11-01T00:00:00-04:00[America/New_York]"),
            ("UTC", "2024-02-26T00:00:00+00:00[UTC]"),
        ];
        let expressions = [
            "*/15 * * * *",
            "30 2 * * *",
            "0 * * * *",
            "*/7 1-3 * * *",
            "0 9 1 * 1",
            "0 0 0 ? * 1",
            "0 59 1,2 * * ?",
            "0 0 29 2 *",
            "0 0 2 1,15 * MON-FRI",
        ];
        for (name, from) in windows {
            let tz = zone(name);
            for expression in expressions {
                // Six days of minutes around the transition.
                assert_agrees_with_scan(expression, &tz, from, 6 * 24 * 60);
            }
        }
    }

    // ---- Interval -------------------------------------------------------------------------------

    #[test]
    fn interval_accepts_every_unit() {
        let cases = [
            ("1s", 1),
            ("30sec", 30),
            ("45secs", 45),
            ("5m", 300),
            ("2min", 120),
            ("10mins", 600),
            ("1h", 3_600),
            ("2hr", 7_200),
            ("3hrs", 10_800),
            ("1d", 86_400),
            ("1day", 86_400),
            ("2days", 172_800),
            ("  15m\t", 900),
            ("\n007s ", 7),
        ];
        for (every, seconds) in cases {
            assert_eq!(parse_interval(every), Ok(Duration::from_secs(seconds)), "{every:?}");
        }
        // The largest interval whose milliseconds fit the payload's u64.
        let largest = u64::MAX / 1000;
        assert_eq!(parse_interval(&format!("{largest}s")), Ok(Duration::from_secs(largest)));
    }

    #[test]
    fn interval_rejects_bad_forms() {
        let cases = [
            ("0s", "interval `0s`: the interval must be greater than zero"),
            ("000m", "interval `000m`: the interval must be greater than zero"),
            ("1.5m", "interval `1.5m`: fractions are not allowed; use a smaller unit, e.g. `90s`"),
            ("-5s", "interval `-5s`: signs are not allowed; write a positive whole number and a unit"),
            ("+5s", "interval `+5s`: signs are not allowed; write a positive whole number and a unit"),
            ("5 s", "interval `5 s`: no space is allowed between the number and the unit"),
            ("99999999999999999999d", "interval `99999999999999999999d`: the interval is too large"),
            (
                "10x",
                "interval `10x`: unknown unit `x`; expected s, sec, secs, m, min, mins, h, hr, hrs, d, day or days",
            ),
            ("10", "interval `10`: missing a unit (s, m, h or d)"),
            ("", "interval ``: the interval is empty; expected e.g. `30s`, `5m`, `1h` or `1d`"),
            ("   ", "interval `   `: the interval is empty; expected e.g. `30s`, `5m`, `1h` or `1d`"),
            ("s", "interval `s`: expected a whole number followed by a unit, e.g. `30s`"),
        ];
        for (every, message) in cases {
            assert_eq!(parse_interval(every).map_err(|error| error.to_string()), Err(message.to_owned()));
        }
        let rejected = [
            "5S",
            "5M",
            "5H",
            "5D",
            "5ms",
            "5w",
            "5seconds",
            "5minutes",
            "5hours",
            "1h30m",
            "5s5",
            "5 ",
            "5_000s",
            "1e3s",
            "0x10s",
            "٥s",
            "５s",
            "5ｓ",
            "5s\u{0}",
            "1,5m",
            "1 000s",
            "213503982334601d",
            "18446744073709552s",
        ];
        for every in rejected {
            assert!(parse_interval(every).is_err(), "{every:?} should be rejected");
        }
    }

    // ---- Time zone ----------------------------------------------------------------------------

    #[test]
    fn timezone_names() {
        for name in ["Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata", "europe/berlin"] {
            assert!(parse_timezone(name).is_ok(), "{name}");
        }
        assert_eq!(parse_timezone("europe/berlin").expect("known").iana_name(), Some("Europe/Berlin"));
        for name in ["Mars/Olympus_Mons", "Europe/Berlin ", "", "Etc/Unknown", "../etc/passwd", "+01:00", "🙂"] {
            let message = parse_timezone(name).expect_err(name).to_string();
            assert!(message.starts_with("time zone `"), "{message}");
        }
        assert_eq!(
            parse_timezone("Mars/Olympus_Mons").expect_err("unknown").to_string(),
            "time zone `Mars/Olympus_Mons`: unknown IANA time zone name; expected e.g. `Europe/Berlin` or `UTC`"
        );
    }

    // ---- Properties ---------------------------------------------------------------------------

    /// One cron item: `*`, a value, a range or a name, optionally stepped; values run a little
    /// past every field's range so that both accepted and rejected schedules come out.
    fn item() -> impl Strategy<Value = String> {
        let base = prop_oneof![
            Just("*".to_owned()),
            Just("?".to_owned()),
            (0u32..64).prop_map(|value| value.to_string()),
            (0u32..64, 0u32..64).prop_map(|(start, end)| format!("{start}-{end}")),
            prop::sample::select(vec!["MON", "sun", "Fri", "JAN", "dec", "MON-FRI", "2024", "2030-2099"])
                .prop_map(str::to_owned),
        ];
        (base, prop::option::of(0u32..70)).prop_map(|(base, step)| match step {
            Some(step) => format!("{base}/{step}"),
            None => base,
        })
    }

    fn field() -> impl Strategy<Value = String> {
        prop::collection::vec(item(), 1..4).prop_map(|items| items.join(","))
    }

    fn expression() -> impl Strategy<Value = String> {
        prop::collection::vec(field(), 5..=7).prop_map(|fields| fields.join(" "))
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_any_text(text in any::<String>()) {
            let _ = CronSchedule::parse(&text);
            let _ = parse_interval(&text);
            let _ = parse_timezone(&text);
        }

        #[test]
        fn parse_never_panics_on_cron_like_text(text in "[0-9*?/,@ a-zA-Z-]{0,40}") {
            let _ = CronSchedule::parse(&text);
        }

        #[test]
        fn next_fire_is_a_later_matching_first_occurrence(
            text in expression(),
            seconds in -400_000_000i64..4_200_000_000,
            zone_index in 0usize..3,
        ) {
            let Ok(parsed) = CronSchedule::parse(&text) else { return Ok(()) };
            let tz = [TimeZone::UTC, zone("Europe/Berlin"), zone("America/New_York")][zone_index].clone();
            let after = Timestamp::from_second(seconds).expect("in range");
            if let Some(next) = parsed.next_after(after, &tz) {
                prop_assert!(next > after);
                let civil = Civil::from_datetime(tz.to_datetime(next));
                prop_assert!(parsed.seconds.contains(u32::from(civil.second)));
                prop_assert!(parsed.minutes.contains(u32::from(civil.minute)));
                prop_assert!(parsed.hours.contains(u32::from(civil.hour)));
                prop_assert!(parsed.months.contains(u32::from(civil.month)));
                prop_assert!(parsed.day_matches(civil));
                let first = tz.to_ambiguous_timestamp(tz.to_datetime(next)).earlier().expect("resolves");
                prop_assert_eq!(first, next);
                // Nothing fires between `after` and `next`: asking again from just before `next`
                // gives `next` back.
                let just_before = next - jiff::SignedDuration::from_nanos(1);
                prop_assert_eq!(parsed.next_after(just_before.max(after), &tz), Some(next));
            }
        }
    }
}
