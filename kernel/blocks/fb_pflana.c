// SPDX-License-Identifier: GPL-2.0
/*
 * fb_pflana - PF_LANA sockets: userspace applications on top of LANA.
 *
 * socket(AF_LANA, SOCK_RAW, 0) creates an instance of type pflana named
 * "pf<inode>"; close(2) unbinds and removes it.  bind(2) with a struct
 * sockaddr_lana renames it, so that scripts can bind a known name with
 * fbctl.  The user contract (errors, frame format) is in
 * include/uapi/linux/lana.h.
 *
 *   egress:  sendmsg copies the frame into an skb and runs the engine from
 *            the block bound below the socket (the socket's egress port).
 *   ingress: netrx queues the frame to the socket's receive queue
 *            (sock_queue_rcv_skb: SO_RCVBUF limit, drops counted).
 *
 * pflana is the top of a stack: one egress port, no ingress port.
 *
 * Neither the socket nor the block keeps a struct fblock pointer: the
 * socket keeps its instance's IDP and looks it up under RCU, checking that
 * the instance found is still a pflana instance of this very socket (it
 * may have been removed with fbctl rm or replaced).  The instance keeps
 * the socket pointer; close(2) removes the instance (one RCU grace period)
 * before the socket can go away.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/net.h>
#include <linux/socket.h>
#include <linux/etherdevice.h>
#include <linux/skbuff.h>
#include <linux/string.h>
#include <net/sock.h>
#include <net/net_namespace.h>
#include <lana/lana.h>

struct lana_sock {
	struct sock sk;			/* first: sk_alloc's object */
	idp_t idp;			/* our instance; written under lock_sock */
	char name[LANA_FBNAMSIZ];
};

struct fb_pflana_priv {
	struct lana_sock *lsk;		/* the owning socket, set by init */
	idp_t port_egress;		/* block below the socket */
	atomic64_t rx, tx;		/* frames queued / sent */
};

static struct fblock_factory fb_pflana_factory;

static inline struct lana_sock *lana_sk(struct sock *sk)
{
	return container_of(sk, struct lana_sock, sk);
}

/* ---- the block --------------------------------------------------------- */

static int fb_pflana_netrx(const struct fblock *fb, struct sk_buff *skb,
			   enum path_type *dir)
{
	struct fb_pflana_priv *priv = fb->priv;
	struct lana_sock *lsk = priv->lsk;
	idp_t next;

	if (*dir == TYPE_EGRESS) {
		/* a block above us (none is allowed to bind): pass it down */
		next = READ_ONCE(priv->port_egress);
		if (next == IDP_UNKNOWN)
			goto drop;
		lana_skb_set_next(skb, next);
		return PPE_SUCCESS;
	}
	if (unlikely(!lsk))
		goto drop;
	skb = skb_share_check(skb, GFP_ATOMIC);
	if (unlikely(!skb))
		return PPE_DROPPED;
	/* Drops (queue full) are counted in sk_drops by the socket layer. */
	if (sock_queue_rcv_skb(&lsk->sk, skb) < 0)
		goto drop;
	atomic64_inc(&priv->rx);
	return PPE_HALT;
drop:
	kfree_skb(skb);
	return PPE_DROPPED;
}

static int fb_pflana_event(struct fblock *fb, unsigned long cmd, void *arg,
			   struct netlink_ext_ack *extack)
{
	struct fb_pflana_priv *priv = fb->priv;
	struct fblock_bind_msg *msg = arg;

	switch (cmd) {
	case FBLOCK_BIND_IDP:
		if (msg->dir != TYPE_EGRESS) {
			NL_SET_ERR_MSG_MOD(extack,
					   "pflana is the top of a stack (a socket): nothing binds on top of it");
			return -EBUSY;
		}
		if (READ_ONCE(priv->port_egress) != IDP_UNKNOWN) {
			NL_SET_ERR_MSG_MOD(extack,
					   "the socket is already bound on top of a block; unbind it first");
			return -EBUSY;
		}
		WRITE_ONCE(priv->port_egress, msg->idp);
		return 0;
	case FBLOCK_UNBIND_IDP:
		if (msg->dir != TYPE_EGRESS ||
		    READ_ONCE(priv->port_egress) != msg->idp) {
			NL_SET_ERR_MSG_MOD(extack,
					   "not bound to that block in this direction");
			return -ENOENT;
		}
		WRITE_ONCE(priv->port_egress, IDP_UNKNOWN);
		return 0;
	case FBLOCK_SET_OPT:
		NL_SET_ERR_MSG_MOD(extack,
				   "pflana has no options; use setsockopt(2) on the socket (SO_RCVBUF)");
		return -ENOENT;
	default:
		return -EOPNOTSUPP;
	}
}

static int fb_pflana_init(struct fblock *fb, struct netlink_ext_ack *extack)
{
	struct fb_pflana_priv *priv = fb->priv;
	struct lana_sock *lsk = lana_fblock_init_ctx();

	if (!lsk) {
		NL_SET_ERR_MSG_MOD(extack,
				   "pflana instances are made by socket(AF_LANA, SOCK_RAW, 0), not by fbctl add");
		return -EOPNOTSUPP;
	}
	priv->lsk = lsk;
	atomic64_set(&priv->rx, 0);
	atomic64_set(&priv->tx, 0);
	return 0;
}

static void fb_pflana_destroy(struct fblock *fb)
{
	/* Nothing to free; the socket notices the IDP is gone. */
}

static int fb_pflana_proc_show(struct seq_file *m, struct fblock *fb)
{
	struct fb_pflana_priv *priv = fb->priv;
	struct sock *sk = &priv->lsk->sk;

	seq_printf(m, "egress %u\nrx %lld\ntx %lld\ndrops %u\nrcvqueue %u\nrcvbuf %d\n",
		   READ_ONCE(priv->port_egress),
		   (long long)atomic64_read(&priv->rx),
		   (long long)atomic64_read(&priv->tx),
		   atomic_read(&sk->sk_drops),
		   skb_queue_len_lockless(&sk->sk_receive_queue),
		   READ_ONCE(sk->sk_rcvbuf));
	return 0;
}

static struct fblock_factory fb_pflana_factory = {
	.type		= "pflana",
	.owner		= THIS_MODULE,
	.mode		= FB_MODE_SOURCE,
	.priv_size	= sizeof(struct fb_pflana_priv),
	.init		= fb_pflana_init,
	.destroy	= fb_pflana_destroy,
	.netrx		= fb_pflana_netrx,
	.event		= fb_pflana_event,
	.proc_show	= fb_pflana_proc_show,
};

/* ---- the socket -------------------------------------------------------- */

static struct proto lana_proto = {
	.name		= "LANA",
	.owner		= THIS_MODULE,
	.obj_size	= sizeof(struct lana_sock),
};

/* Our instance's priv, if the IDP still is a pflana instance of lsk. */
static struct fb_pflana_priv *lana_sock_priv_rcu(struct lana_sock *lsk)
{
	struct fblock *fb = lana_fblock_lookup_rcu(READ_ONCE(lsk->idp));
	struct fb_pflana_priv *priv;

	if (!fb || fb->factory != &fb_pflana_factory)
		return NULL;
	priv = READ_ONCE(fb->priv);
	return priv && priv->lsk == lsk ? priv : NULL;
}

static int lana_sock_release(struct socket *sock)
{
	struct sock *sk = sock->sk;
	struct lana_sock *lsk;

	if (!sk)
		return 0;
	lsk = lana_sk(sk);
	/* Unbinds and removes the instance; no packet sees it afterwards. */
	lana_fblock_remove(lsk->idp, &fb_pflana_factory, true);
	lock_sock(sk);
	sock_orphan(sk);
	sock->sk = NULL;
	skb_queue_purge(&sk->sk_receive_queue);
	release_sock(sk);
	sock_put(sk);
	return 0;
}

static int lana_sock_bind(struct socket *sock, struct sockaddr *uaddr,
			  int addr_len)
{
	struct sockaddr_lana *sl = (struct sockaddr_lana *)uaddr;
	struct sock *sk = sock->sk;
	struct lana_sock *lsk = lana_sk(sk);
	char name[LANA_FBNAMSIZ];
	idp_t idp;
	int err;

	if (addr_len < (int)sizeof(*sl))
		return -EINVAL;
	if (sl->sl_family != AF_LANA)
		return -EAFNOSUPPORT;
	if (strnlen(sl->sl_name, sizeof(sl->sl_name)) >= sizeof(sl->sl_name))
		return -EINVAL;
	strscpy(name, sl->sl_name, sizeof(name));

	lock_sock(sk);
	err = 0;
	if (!strcmp(name, lsk->name))
		goto out;
	/* New instance first, so a taken or bad name leaves the old one. */
	err = lana_fblock_add(name, "pflana", lsk, &idp);
	if (err == -EEXIST)
		err = -EADDRINUSE;
	else if (err == -ENAMETOOLONG)
		err = -EINVAL;
	if (err)
		goto out;
	err = lana_fblock_remove(lsk->idp, &fb_pflana_factory, false);
	if (err == -EBUSY) {
		lana_fblock_remove(idp, &fb_pflana_factory, true);
		goto out;
	}
	/* -ENOENT: the old instance was removed by fbctl; the new one stays */
	err = 0;
	WRITE_ONCE(lsk->idp, idp);
	strscpy(lsk->name, name, sizeof(lsk->name));
out:
	release_sock(sk);
	return err;
}

static int lana_sock_getname(struct socket *sock, struct sockaddr *uaddr,
			     int peer)
{
	struct sockaddr_lana *sl = (struct sockaddr_lana *)uaddr;
	struct lana_sock *lsk = lana_sk(sock->sk);

	if (peer)
		return -EOPNOTSUPP;
	memset(sl, 0, sizeof(*sl));
	sl->sl_family = AF_LANA;
	lock_sock(sock->sk);
	strscpy(sl->sl_name, lsk->name, sizeof(sl->sl_name));
	release_sock(sock->sk);
	return sizeof(*sl);
}

static int lana_sock_sendmsg(struct socket *sock, struct msghdr *msg,
			     size_t len)
{
	struct sock *sk = sock->sk;
	struct lana_sock *lsk = lana_sk(sk);
	struct fb_pflana_priv *priv;
	struct sk_buff *skb;
	idp_t next;
	int err;

	if (msg->msg_flags & ~(MSG_DONTWAIT | MSG_NOSIGNAL | MSG_EOR))
		return -EOPNOTSUPP;
	if (len > LANA_PF_MAXLEN)
		return -EMSGSIZE;
	if (len < ETH_HLEN)
		return -EINVAL;
	rcu_read_lock();
	priv = lana_sock_priv_rcu(lsk);
	next = priv ? READ_ONCE(priv->port_egress) : IDP_UNKNOWN;
	rcu_read_unlock();
	if (next == IDP_UNKNOWN)
		return -ENOTCONN;

	/* headroom for devices that push their own headers (virtio) */
	skb = sock_alloc_send_skb(sk, len + LL_MAX_HEADER,
				  msg->msg_flags & MSG_DONTWAIT, &err);
	if (!skb)
		return err;
	skb_reserve(skb, LL_MAX_HEADER);
	err = memcpy_from_msg(skb_put(skb, len), msg, len);
	if (err) {
		kfree_skb(skb);
		return err;
	}
	skb_reset_mac_header(skb);
	skb->protocol = eth_hdr(skb)->h_proto;
	skb->priority = READ_ONCE(sk->sk_priority);

	local_bh_disable();
	rcu_read_lock();
	/* The port may have moved meanwhile (insert/cut): read it again. */
	priv = lana_sock_priv_rcu(lsk);
	next = priv ? READ_ONCE(priv->port_egress) : IDP_UNKNOWN;
	if (next != IDP_UNKNOWN) {
		atomic64_inc(&priv->tx);
		lana_process_packet(skb, next, TYPE_EGRESS);
	}
	rcu_read_unlock();
	local_bh_enable();
	if (next == IDP_UNKNOWN) {
		kfree_skb(skb);
		return -ENOTCONN;
	}
	return len;
}

static int lana_sock_recvmsg(struct socket *sock, struct msghdr *msg,
			     size_t len, int flags)
{
	struct sock *sk = sock->sk;
	struct sk_buff *skb;
	size_t copied;
	int err;

	if (flags & ~(MSG_DONTWAIT | MSG_TRUNC | MSG_PEEK | MSG_CMSG_COMPAT))
		return -EOPNOTSUPP;
	skb = skb_recv_datagram(sk, flags, &err);
	if (!skb)
		return err;
	copied = skb->len;
	if (copied > len) {
		copied = len;
		msg->msg_flags |= MSG_TRUNC;
	}
	err = skb_copy_datagram_msg(skb, 0, msg, copied);
	if (!err) {
		sock_recv_cmsgs(msg, sk, skb);
		err = (flags & MSG_TRUNC) ? skb->len : copied;
	}
	msg->msg_namelen = 0;
	skb_free_datagram(sk, skb);
	return err;
}

static const struct proto_ops lana_sock_ops = {
	.family		= PF_LANA,
	.owner		= THIS_MODULE,
	.release	= lana_sock_release,
	.bind		= lana_sock_bind,
	.connect	= sock_no_connect,
	.socketpair	= sock_no_socketpair,
	.accept		= sock_no_accept,
	.getname	= lana_sock_getname,
	.poll		= datagram_poll,
	.ioctl		= sock_no_ioctl,
	.listen		= sock_no_listen,
	.shutdown	= sock_no_shutdown,
	.sendmsg	= lana_sock_sendmsg,
	.recvmsg	= lana_sock_recvmsg,
	.mmap		= sock_no_mmap,
};

static int lana_sock_create(struct net *net, struct socket *sock, int protocol,
			    int kern)
{
	struct lana_sock *lsk;
	struct sock *sk;
	int err;

	if (!net_eq(net, &init_net))
		return -EAFNOSUPPORT;
	if (sock->type != SOCK_RAW)
		return -ESOCKTNOSUPPORT;
	if (protocol != 0)
		return -EPROTONOSUPPORT;
	if (!kern && !capable(CAP_NET_RAW))
		return -EPERM;

	sk = sk_alloc(net, PF_LANA, GFP_KERNEL, &lana_proto, kern);
	if (!sk)
		return -ENOMEM;
	sock->ops = &lana_sock_ops;
	sock_init_data(sock, sk);
	lsk = lana_sk(sk);
	snprintf(lsk->name, sizeof(lsk->name), "pf%lu",
		 SOCK_INODE(sock)->i_ino);
	err = lana_fblock_add(lsk->name, "pflana", lsk, &lsk->idp);
	if (err) {
		pr_info("pflana: cannot create instance %s: error %d\n",
			lsk->name, err);
		sock_orphan(sk);
		sock->sk = NULL;
		sock_put(sk);
		return err;
	}
	return 0;
}

static const struct net_proto_family lana_family_ops = {
	.family		= PF_LANA,
	.create		= lana_sock_create,
	.owner		= THIS_MODULE,
};

static int __init fb_pflana_module_init(void)
{
	int err;

	err = proto_register(&lana_proto, 0);
	if (err)
		return err;
	err = lana_register_fblock_type(&fb_pflana_factory);
	if (err)
		goto out_proto;
	err = sock_register(&lana_family_ops);
	if (err) {
		pr_err("pflana: address family %d is taken (error %d)\n",
		       PF_LANA, err);
		goto out_type;
	}
	return 0;
out_type:
	lana_unregister_fblock_type(&fb_pflana_factory);
out_proto:
	proto_unregister(&lana_proto);
	return err;
}

static void __exit fb_pflana_module_exit(void)
{
	sock_unregister(PF_LANA);
	lana_unregister_fblock_type(&fb_pflana_factory);
	proto_unregister(&lana_proto);
}

module_init(fb_pflana_module_init);
module_exit(fb_pflana_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LANA PF_LANA socket family and pflana functional block");
MODULE_ALIAS("lana-fb-pflana");
MODULE_ALIAS_NETPROTO(PF_LANA);
