package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mizzen-dev/mizzen/internal/snapshot"
	"github.com/mizzen-dev/mizzen/roles/server"
)

// errExternalEtcd is the answer of every snapshot command and flag when
// the cluster's state is in an external etcd.
var errExternalEtcd = errors.New("etcd snapshots need the embedded etcd: with --datastore-endpoint, back up the external etcd with its own tools")

// snapshotServerFlags are the server's flags for snapshots and cluster reset.
func snapshotServerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "cluster-reset", Usage: "make the embedded etcd a single-member cluster (restoring --cluster-reset-restore-path if set), then exit", EnvVars: env("cluster-reset")},
		&cli.StringFlag{Name: "cluster-reset-restore-path", Usage: "etcd snapshot file to restore with --cluster-reset", EnvVars: env("cluster-reset-restore-path")},
		&cli.StringFlag{Name: "etcd-snapshot-schedule-cron", Value: snapshot.DefaultSchedule, Usage: "when to snapshot the embedded etcd (cron: minute hour day month weekday, with an optional leading seconds field)", EnvVars: env("etcd-snapshot-schedule-cron")},
		&cli.IntFlag{Name: "etcd-snapshot-retention", Value: 5, Usage: "number of scheduled snapshots to keep", EnvVars: env("etcd-snapshot-retention")},
		&cli.StringFlag{Name: "etcd-snapshot-dir", Usage: "directory of etcd snapshots (default: DATA/server/db/snapshots)", EnvVars: env("etcd-snapshot-dir")},
		&cli.BoolFlag{Name: "etcd-disable-snapshots", Usage: "take no scheduled etcd snapshots", EnvVars: env("etcd-disable-snapshots")},
	}
}

// snapshotServerConfig fills in and checks the server's snapshot and
// cluster reset settings.
func snapshotServerConfig(c *cli.Context, cfg *server.Config) error {
	cfg.ClusterReset, cfg.ClusterResetRestorePath = c.Bool("cluster-reset"), c.String("cluster-reset-restore-path")
	cfg.EtcdSnapshotScheduleCron, cfg.EtcdSnapshotRetention = c.String("etcd-snapshot-schedule-cron"), c.Int("etcd-snapshot-retention")
	cfg.EtcdSnapshotDir, cfg.EtcdDisableSnapshots = c.String("etcd-snapshot-dir"), c.Bool("etcd-disable-snapshots")
	if cfg.ClusterResetRestorePath != "" && !cfg.ClusterReset {
		return usageError{errors.New("--cluster-reset-restore-path needs --cluster-reset")}
	}
	if len(cfg.DatastoreEndpoints) > 0 {
		for _, f := range []string{"cluster-reset", "etcd-snapshot-schedule-cron", "etcd-snapshot-retention", "etcd-snapshot-dir"} {
			if c.IsSet(f) {
				return usageError{fmt.Errorf("--%s: %w", f, errExternalEtcd)}
			}
		}
		return nil
	}
	if cfg.EtcdSnapshotDir == "" {
		cfg.EtcdSnapshotDir = filepath.Join(cfg.DataDir, "server", "db", "snapshots")
	}
	if cfg.EtcdSnapshotRetention < 1 {
		return usageError{fmt.Errorf("--etcd-snapshot-retention: %d: keep at least one snapshot", cfg.EtcdSnapshotRetention)}
	}
	if _, err := snapshot.ParseSchedule(cfg.EtcdSnapshotScheduleCron); err != nil && !cfg.EtcdDisableSnapshots {
		return usageError{fmt.Errorf("--etcd-snapshot-schedule-cron: %w", err)}
	}
	return nil
}

// etcdSnapshotCommand is `mizzen etcd-snapshot`: save, ls, delete and
// prune snapshots of a running server's embedded etcd.
func etcdSnapshotCommand() *cli.Command {
	common := func(extra ...cli.Flag) []cli.Flag {
		flags := []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: "/var/lib/mizzen", Usage: "the server's state directory", EnvVars: env("data-dir")},
			&cli.IntFlag{Name: "etcd-client-port", Value: 2379, Usage: "the server's embedded etcd client port (127.0.0.1)", EnvVars: env("etcd-client-port")},
			&cli.StringFlag{Name: "etcd-snapshot-dir", Aliases: []string{"dir"}, Usage: "directory of etcd snapshots (default: DATA/server/db/snapshots)", EnvVars: env("etcd-snapshot-dir")},
			&cli.StringFlag{Name: "node-name", Usage: "node name in snapshot names (default: hostname)", EnvVars: env("node-name")},
			&cli.StringFlag{Name: "datastore-endpoint", Usage: "the server's external etcd, if any (snapshots need the embedded one)", EnvVars: env("datastore-endpoint")},
		}
		return append(append(flags, extra...), globalFlags()...)
	}
	onUsageError := func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
	nameFlag := &cli.StringFlag{Name: "name", Value: snapshot.DefaultName, Usage: "snapshot name prefix", EnvVars: env("etcd-snapshot-name")}
	return &cli.Command{
		Name:            "etcd-snapshot",
		Usage:           "save, list, delete and prune snapshots of the server's embedded etcd",
		HideHelpCommand: true,
		OnUsageError:    onUsageError,
		Subcommands: []*cli.Command{
			{Name: "save", Usage: "take a snapshot now", Flags: common(nameFlag), Action: snapshotSave, OnUsageError: onUsageError},
			{Name: "ls", Aliases: []string{"list"}, Usage: "list snapshots", Flags: common(), Action: snapshotList, OnUsageError: onUsageError},
			{Name: "delete", Usage: "delete snapshots by name", ArgsUsage: "NAME...", Flags: common(), Action: snapshotDelete, OnUsageError: onUsageError},
			{Name: "prune", Usage: "delete the oldest snapshots named --name beyond --snapshot-retention", Flags: common(nameFlag,
				&cli.IntFlag{Name: "snapshot-retention", Aliases: []string{"etcd-snapshot-retention"}, Value: 5, Usage: "number of snapshots to keep", EnvVars: env("etcd-snapshot-retention")},
			), Action: snapshotPrune, OnUsageError: onUsageError},
		},
	}
}

// snapshotStore is the snapshot directory the command works on.
func snapshotStore(c *cli.Context) (snapshot.Store, error) {
	if c.String("datastore-endpoint") != "" {
		return snapshot.Store{}, usageError{errExternalEtcd}
	}
	dir := c.String("etcd-snapshot-dir")
	if dir == "" {
		if c.String("data-dir") == "" {
			return snapshot.Store{}, usageError{errors.New("--data-dir must not be empty")}
		}
		dir = filepath.Join(c.String("data-dir"), "server", "db", "snapshots")
	}
	return snapshot.Store{Dir: dir}, nil
}

// snapshotNode is the node name that goes into snapshot names.
func snapshotNode(c *cli.Context) (string, error) {
	if n := c.String("node-name"); n != "" {
		return n, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("node name: %w", err)
	}
	return strings.ToLower(h), nil
}

func snapshotSave(c *cli.Context) error {
	store, err := snapshotStore(c)
	if err != nil {
		return err
	}
	if c.Args().Len() > 0 {
		return usageError{fmt.Errorf("save takes no arguments, got %q", c.Args().Slice())}
	}
	if err := parsePort("etcd-client-port", c.Int("etcd-client-port")); err != nil {
		return err
	}
	node, err := snapshotNode(c)
	if err != nil {
		return err
	}
	name := snapshot.Name(c.String("name"), node, time.Now())
	if err := snapshot.ValidName(name); err != nil {
		return usageError{fmt.Errorf("--name: %q is not a snapshot name", c.String("name"))}
	}
	client, err := snapshot.Dial(c.Context, filepath.Join(c.String("data-dir"), "server", "tls", "etcd"), c.Int("etcd-client-port"))
	if err != nil {
		return err
	}
	defer client.Close()
	info, err := store.Save(c.Context, client, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "Snapshot %s saved.\n", info.Name)
	return nil
}

func snapshotList(c *cli.Context) error {
	store, err := snapshotStore(c)
	if err != nil {
		return err
	}
	if c.Args().Len() > 0 {
		return usageError{fmt.Errorf("ls takes no arguments, got %q", c.Args().Slice())}
	}
	infos, err := store.List()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 0, 1, ' ', 0)
	fmt.Fprint(w, "Name\tLocation\tSize\tCreated\n")
	for _, i := range infos {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", i.Name, i.Location(), i.Size, i.Created.UTC().Format(time.RFC3339))
	}
	return w.Flush()
}

func snapshotDelete(c *cli.Context) error {
	store, err := snapshotStore(c)
	if err != nil {
		return err
	}
	if c.Args().Len() == 0 {
		return usageError{errors.New("delete: name the snapshots to delete (see mizzen etcd-snapshot ls)")}
	}
	var errs []error
	for _, name := range c.Args().Slice() {
		if err := store.Delete(name); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(c.App.Writer, "Snapshot %s deleted.\n", name)
	}
	return errors.Join(errs...)
}

func snapshotPrune(c *cli.Context) error {
	store, err := snapshotStore(c)
	if err != nil {
		return err
	}
	node, err := snapshotNode(c)
	if err != nil {
		return err
	}
	if n := c.Int("snapshot-retention"); n < 1 {
		return usageError{fmt.Errorf("--snapshot-retention: %d: keep at least one snapshot", n)}
	}
	deleted, err := store.Prune(c.String("name"), node, c.Int("snapshot-retention"))
	for _, name := range deleted {
		fmt.Fprintf(c.App.Writer, "Snapshot %s deleted.\n", name)
	}
	return err
}
