/*
 * autostart.c — the user's XDG autostart entry for taskrouter-tray (see autostart.h).
 */
#include "autostart.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *tr_tray_autostart_text(bool enabled, const char *exec) {
	char *text = NULL;

	if (asprintf(&text,
		    "[Desktop Entry]\n"
		    "Type=Application\n"
		    "Name=TaskRouter tray\n"
		    "Comment=The TaskRouter worker's state, tasks and reservations (taskrouterd)\n"
		    "Exec=%s\n"
		    "Icon=call-start\n"
		    "Terminal=false\n"
		    "Categories=Network;Office;\n"
		    "X-GNOME-UsesNotifications=true\n"
		    "X-GNOME-Autostart-enabled=%s\n"
		    "Hidden=%s\n",
		    exec, enabled ? "true" : "false", enabled ? "false" : "true") < 0) {
		return NULL;
	}
	return text;
}

static int mkdir_one(const char *path) {
	return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -errno;
}

int tr_tray_autostart_set(bool on, const char *config_home, const char *exec, char **ret_path) {
	const char *home = getenv("HOME");
	char *base = NULL, *dir = NULL, *path = NULL, *tmp = NULL, *text = NULL;
	int fd = -1, r = 0;
	size_t len;

	if (!exec || !*exec) {
		return -EINVAL;
	}
	if (!config_home || !*config_home) {
		config_home = getenv("XDG_CONFIG_HOME");
	}
	if (config_home && *config_home == '/') {
		base = strdup(config_home);
	} else if (home && *home == '/') {
		if (asprintf(&base, "%s/.config", home) < 0) {
			base = NULL;
		} else if ((r = mkdir_one(base)) < 0) {
			goto out;
		}
	} else {
		return -ENOENT;
	}
	if (!base || asprintf(&dir, "%s/autostart", base) < 0 ||
			asprintf(&path, "%s/" TR_TRAY_DESKTOP_ID, dir) < 0 ||
			asprintf(&tmp, "%s/.%s.tmp", dir, TR_TRAY_DESKTOP_ID) < 0 ||
			!(text = tr_tray_autostart_text(on, exec))) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = mkdir_one(dir)) < 0) {
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	len = strlen(text);
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			r = -errno;
			goto out;
		}
		off += (size_t)n;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = -errno;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto out;
	}
	if (ret_path) {
		*ret_path = path;
		path = NULL;
	}
out:
	if (fd >= 0) {
		close(fd);
	}
	if (r < 0 && tmp) {
		unlink(tmp);
	}
	free(text);
	free(tmp);
	free(path);
	free(dir);
	free(base);
	return r;
}
