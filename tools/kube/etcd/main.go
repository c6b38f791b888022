// Command etcd is etcd's own server entry point, built here from the
// go.etcd.io/etcd/server/v3 module so no prebuilt binary is downloaded.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
