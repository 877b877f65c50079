// Command etcd is the etcd server. The etcd binary's own main package lives in the go.etcd.io/etcd/v3
// root module, which is not versioned with go.etcd.io/etcd/server/v3; this is the same one-line main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
