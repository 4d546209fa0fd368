//! The development key file: a master key generated on first start when none is configured.
//! It must never be created or accepted readable by anyone but its owner.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use secrecy::zeroize::Zeroizing;

use super::keys::try_generate_master_key_line;
use super::{MasterKey, parse_master_keys};

/// Loads the development key file, or creates it with a fresh key (readable by its owner only)
/// when it does not exist. Returns the keys and whether the file was just created, so the
/// caller can warn that secrets are sealed with a key that lives next to the data.
///
/// An existing file that group or others may access is refused: its key would not be secret.
pub fn load_or_create_dev_key_file(path: &Path) -> anyhow::Result<(Vec<MasterKey>, bool)> {
    let exists = path
        .try_exists()
        .with_context(|| format!("could not check whether key file {} exists", path.display()))?;
    if exists { Ok((load_key_file(path)?, false)) } else { Ok((create_key_file(path)?, true)) }
}

fn load_key_file(path: &Path) -> anyhow::Result<Vec<MasterKey>> {
    let mut file = File::open(path).with_context(|| format!("could not open key file {}", path.display()))?;
    // Checked on the opened file, so the file read is the file checked.
    let metadata = file
        .metadata()
        .with_context(|| format!("could not read the permissions of key file {}", path.display()))?;
    if !metadata.is_file() {
        anyhow::bail!(
            "key file {} is not a regular file: move it away, restore the key file there, or set PLUGBOARD_MASTER_KEYS",
            path.display()
        );
    }
    refuse_shared_access(&metadata, path)?;
    // Sized up front so the buffer holding the keys is never reallocated and left behind.
    let capacity = usize::try_from(metadata.len()).unwrap_or(0).saturating_add(1);
    let mut contents = Zeroizing::new(String::with_capacity(capacity));
    file.read_to_string(&mut contents)
        .with_context(|| format!("could not read key file {}", path.display()))?;
    parse_master_keys(contents.trim()).with_context(|| {
        format!("key file {} is invalid (it uses the PLUGBOARD_MASTER_KEYS format)", path.display())
    })
}

#[cfg(unix)]
fn refuse_shared_access(metadata: &fs::Metadata, path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "key file {path} may be accessed by group or others (mode {mode:03o}); \
             restrict it with `chmod 600 {path}`",
            path = path.display(),
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_shared_access(_metadata: &fs::Metadata, _path: &Path) -> anyhow::Result<()> {
    Ok(())
}

fn create_key_file(path: &Path) -> anyhow::Result<Vec<MasterKey>> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        create_private_dir_all(dir)
            .with_context(|| format!("could not create directory {}", dir.display()))?;
    }
    let mut tag = [0u8; 3];
    getrandom::fill(&mut tag)
        .map_err(|error| anyhow!("could not generate a master key: the random generator failed: {error}"))?;
    let line = try_generate_master_key_line(&dev_key_id(SystemTime::now(), tag))
        .map(Zeroizing::new)
        .map_err(|error| anyhow!("could not generate a master key: the random generator failed: {error}"))?;
    let keys = parse_master_keys(&line).context("generated an invalid key line")?;
    let mut file =
        create_private_file(path).with_context(|| format!("could not create key file {}", path.display()))?;
    if let Err(error) = write_key_line(&mut file, &line) {
        // Leave no half-written file behind, so the next start generates a key again. If the
        // removal fails too, the write error is still the one worth reporting.
        let _ = fs::remove_file(path);
        return Err(error).with_context(|| format!("could not write key file {}", path.display()));
    }
    Ok(keys)
}

/// Written piece by piece so no unzeroized copy of the line is made.
fn write_key_line(file: &mut File, line: &str) -> io::Result<()> {
    file.write_all(line.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Created with mode 0600 from the first instant (not chmod-ed afterwards), and never over an
/// existing file or symlink.
fn create_private_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Directories we create to hold the key are private too; existing ones are left as they are.
fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// `dev-<yyyymmdd>-<6 hex digits>`: a key id that dates the key and tells it from any other
/// generated that day (a lost key file replaced, a second instance started elsewhere), so a
/// blob sealed by another dev key reports an unknown key instead of a failed decryption, and
/// `rotate-keys --check` sees it.
fn dev_key_id(now: SystemTime, tag: [u8; 3]) -> String {
    // A clock before 1970 is broken; any valid id will do then.
    let days = now.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs() / 86_400);
    let (year, month, day) = civil_date(days);
    format!("dev-{year:04}{month:02}{day:02}-{:02x}{:02x}{:02x}", tag[0], tag[1], tag[2])
}

/// (year, month, day) of a day counted from 1970-01-01, by Howard Hinnant's `civil_from_days`
/// (<https://howardhinnant.github.io/date_algorithms.html>), for days from the epoch on.
fn civil_date(days_since_epoch: u64) -> (u64, u64, u64) {
    let days = days_since_epoch + 719_468; // days since 0000-03-01
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::crypto::KeyId;

    fn ids(keys: &[MasterKey]) -> Vec<&str> {
        keys.iter().map(|key| key.id().as_str()).collect()
    }

    #[test]
    fn a_key_file_that_is_a_folder_is_named_as_such() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("master.key");
        std::fs::create_dir(&path).unwrap();
        let err = load_or_create_dev_key_file(&path).unwrap_err();
        assert!(format!("{err:#}").contains("is not a regular file"), "{err:#}");
    }

    #[test]
    fn dev_key_id_is_the_utc_date_and_a_tag() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(19_723), (2024, 1, 1));
        assert_eq!(civil_date(19_782), (2024, 2, 29));
        let day = UNIX_EPOCH + Duration::from_secs(19_723 * 86_400 + 86_399);
        assert_eq!(dev_key_id(day, [0x0a, 0xbc, 0xff]), "dev-20240101-0abcff");
        assert!(KeyId::parse(&dev_key_id(SystemTime::now(), [0xff; 3])).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn dev_key_file_is_created_private_and_reloaded_identically() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("data/keys/master.key");

        let (created_keys, created) = load_or_create_dev_key_file(&path).expect("create");
        let (reloaded_keys, created_again) = load_or_create_dev_key_file(&path).expect("reload");

        assert!(created && !created_again);
        let mode = fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(ids(&created_keys), ids(&reloaded_keys));
        assert!(created_keys[0].id().as_str().starts_with("dev-"));
        assert_eq!(created_keys[0].bytes(), reloaded_keys[0].bytes());
    }

    #[cfg(unix)]
    #[test]
    fn group_readable_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("master.key");
        load_or_create_dev_key_file(&path).expect("create");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");

        let error = load_or_create_dev_key_file(&path).expect_err("shared file refused");

        let message = format!("{error:#}");
        assert!(message.contains("mode 640") && message.contains("chmod 600"), "{message}");
    }

    #[cfg(unix)]
    #[test]
    fn invalid_key_file_names_the_file_and_the_problem() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("master.key");
        fs::write(&path, "k1:tooshort\n").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");

        let message = format!("{:#}", load_or_create_dev_key_file(&path).expect_err("invalid"));

        assert!(message.contains("master.key") && message.contains("entry 1"), "{message}");
    }
}
