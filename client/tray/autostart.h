/*
 * autostart.h — turning taskrouter-tray's XDG autostart entry on and off for one user.
 *
 * `meson install` puts an entry that is off (Hidden=true) in $sysconfdir/xdg/autostart. The
 * XDG autostart specification lets a user's file of the same name in
 * $XDG_CONFIG_HOME/autostart (default ~/.config/autostart) override it; that is what the
 * desktops' "startup applications" settings write too. taskrouter-tray --autostart=on writes
 * such a file (enabled), --autostart=off writes it disabled.
 */
#pragma once

#include <stdbool.h>

/* The desktop entry's file name, the same in every autostart directory. */
#define TR_TRAY_DESKTOP_ID "taskrouter-tray.desktop"

/*
 * Write the user's autostart entry: enabled (on) or disabled, running exec (an absolute
 * path or a command on PATH). config_home is $XDG_CONFIG_HOME, or NULL for the default
 * ($XDG_CONFIG_HOME, else $HOME/.config). The directory is created (0700) when missing; the
 * file is replaced atomically. On success returns 0 and, if ret_path is not NULL, the
 * file's path (caller frees); on failure a negative errno (-ENOENT: no HOME to find the
 * directory).
 */
int tr_tray_autostart_set(bool on, const char *config_home, const char *exec, char **ret_path);

/* The entry's text (malloc'd, NULL on ENOMEM): the installed one when enabled is false. */
char *tr_tray_autostart_text(bool enabled, const char *exec);
